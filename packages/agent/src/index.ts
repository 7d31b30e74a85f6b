/** @mnha/agent: the daemon, its adapters and the CLI. Types for scripts and tests. */
export type * from "./contracts.js";
export { Agent } from "./daemon/agent.js";
export { runAgent } from "./daemon/run.js";
export { ElectionCore } from "./core/election.js";
export type { ElectionEffect, ElectionInput, ElectionSettings, ElectionSnapshot } from "./core/election.js";
export { AGENT_VERSION } from "./version.js";
