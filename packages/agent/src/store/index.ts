export { SqliteStore, type SqliteStoreOptions, type StoreAlert } from "./sqlite-store.js";
export type { DailySummary, IntegrityResult, JobName, JobResult, OptimizeResult, RetentionResult } from "./worker-protocol.js";
export { GAP_EVENT_TYPE, GAP_SERIES, SCHEMA_VERSION } from "./schema.js";
