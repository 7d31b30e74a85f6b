import { DEAD_HEALTH } from "../../src/db/mariadb.js";
import type { DatabaseHealth } from "../../src/db/types.js";

/** A live server whose replica runs with no error, in the given server run (`uptimeSeconds`), changed by `overrides`. */
export function replicatingHealth(overrides: Partial<DatabaseHealth> = {}): DatabaseHealth {
  return { ...DEAD_HEALTH, alive: true, replicaConfigured: true, slaveIoRunning: "Yes", slaveSqlRunning: "Yes", ...overrides };
}
