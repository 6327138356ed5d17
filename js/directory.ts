/**
 * Reading the directory (libchat's two shared topics: account bundles and key packages)
 * into the core: everything the first time, then what came since the last read (a minute
 * of overlap for clock skew; the core skips records it has seen).
 */
import type { Transport } from "./types.js";
import { glue } from "./wasm.js";

export class DirectoryReader {
  private since: Date | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly client: glue.WasmClient,
  ) {}

  async read(): Promise<void> {
    const topics = glue.WasmClient.directoryTopics();
    const started = new Date();
    const q = this.since ? { contentTopics: topics, since: this.since } : { contentTopics: topics };
    for await (const m of this.transport.query(q)) {
      try {
        this.client.ingestDirectory(m.contentTopic, m.payload);
      } catch {
        /* shared space: records that do not verify are ignored */
      }
    }
    this.since = new Date(started.getTime() - 60_000);
  }
}
