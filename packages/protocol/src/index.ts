export * from "./messages.js";
export * from "./codec.js";
export * from "./handshake.js";
export * from "./framing.js";
export * from "./witness.js";
