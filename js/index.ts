/**
 * logos-chat: end-to-end encrypted chat over the Logos Delivery network.
 *
 *   import logos from "logos-chat";
 *   const node = await logos.connect("memory");
 *   const chat = await node.chat({ name: "alice" });
 */
import { connect } from "./node.js";
import { createMemoryHub } from "./transports/memory.js";

export { connect, createMemoryHub };
export { LogosChatError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export type * from "./types.js";

/** The default export: `logos.connect === connect`. */
const logos = { connect, createMemoryHub };
export default logos;
