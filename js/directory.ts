/**
 * Reading the directory into the core for a lookup of some accounts. The core names the
 * topics (`lookupTopics`): libchat's two shared topics (plain records), each account's
 * sealed list, and the sealed key packages of the installations its known list shows, so
 * a lookup reads, ingests, and asks again until no new topic comes (a list read in the
 * first pass names the key-package topics of the second). A topic read before is read
 * again only from where it was last read (a minute of overlap for clock skew; the core
 * skips records it has seen), except the shared topics for an account not looked up
 * before: the core takes in only the lists of accounts it looks up, so what an earlier
 * read passed over is read again for it.
 */
import type { Transport } from "./types.js";
import { glue } from "./wasm.js";

/** How many content topics go in one store query (store nodes cap a query's topics). */
const TOPICS_PER_QUERY = 10;
/** How many passes one lookup makes at most (the list, then its key packages). */
const PASSES = 3;
/** How many topics' read times are kept (oldest forgotten first: read whole again). */
const SINCE_CAP = 4096;

export class DirectoryReader {
  private readonly since = new Map<string, Date>();
  /** Accounts whose records on the shared topics were read whole once. */
  private readonly sharedFor = new Set<string>();

  constructor(
    private readonly transport: Transport,
    private readonly client: glue.WasmClient,
  ) {}

  async read(accounts: string[]): Promise<void> {
    const done = new Set<string>();
    const shared = glue.WasmClient.directoryTopics() as string[];
    if (accounts.some((a) => !this.sharedFor.has(a))) for (const t of shared) this.since.delete(t);
    for (let pass = 0; pass < PASSES; pass++) {
      const topics = (this.client.lookupTopics(accounts) as string[]).filter((t) => !done.has(t));
      if (topics.length === 0) break;
      const started = new Date();
      // Topics never read go whole; the others from the oldest of their last reads.
      const fresh = topics.filter((t) => !this.since.has(t));
      const known = topics.filter((t) => this.since.has(t));
      const oldest = known.reduce<Date | undefined>((a, t) => {
        const s = this.since.get(t)!;
        return a === undefined || s < a ? s : a;
      }, undefined);
      for (const [group, since] of [[fresh, undefined], [known, oldest]] as [string[], Date | undefined][]) {
        for (let i = 0; i < group.length; i += TOPICS_PER_QUERY) {
          const contentTopics = group.slice(i, i + TOPICS_PER_QUERY);
          for await (const m of this.transport.query(since ? { contentTopics, since } : { contentTopics })) {
            try {
              this.client.ingestDirectory(m.contentTopic, m.payload);
            } catch {
              /* shared space: records that do not verify are ignored */
            }
          }
        }
      }
      const next = new Date(started.getTime() - 60_000);
      for (const t of topics) {
        done.add(t);
        this.since.delete(t);
        this.since.set(t, next);
      }
      while (this.since.size > SINCE_CAP) this.since.delete(this.since.keys().next().value!);
    }
    for (const a of accounts) this.sharedFor.add(a);
    while (this.sharedFor.size > SINCE_CAP) this.sharedFor.delete(this.sharedFor.values().next().value!);
  }
}
