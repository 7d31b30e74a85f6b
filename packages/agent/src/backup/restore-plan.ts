/**
 * `mnha restore <backup>` as a step plan. The backup is loaded into this node's MariaDB
 * with the binary log on, so replication carries the restore to the peer as ordinary
 * transactions of this node's GTID domain: both databases end up with the backup's data and
 * their GTID histories stay consistent (no RESET MASTER on either node). While it runs this
 * node is read-only for the applications (their accounts lack READ ONLY ADMIN); root loads.
 *
 * The steps depend only on RestoreActions, so the ordering, resume and failure handling are
 * tested with an in-memory double; restore-mariadb.ts carries them out on real servers.
 */
import type { Plan } from "../plan/step-plan.js";

export interface RestoreActions {
  /**
   * Maintenance mode on both nodes for the duration (the agents watch but act on nothing: no
   * failover, no service restore while the data is replaced). Returns a line for the output.
   * Null: the pair was already in maintenance before the restore, and stays so.
   */
  maintenance: ((on: boolean) => Promise<string>) | null;
  /** Verifies the backup file (checksum, gzip stream, trailer, manifest counts). */
  verifyBackup(): Promise<void>;
  /** Takes a backup of the current database first; returns its path. */
  safetyBackup(): Promise<string>;
  readOnly(): Promise<boolean>;
  setReadOnly(on: boolean): Promise<void>;
  /** Drops the application schemas the backup does not hold (they would survive the load). */
  dropSchemasNotInBackup(): Promise<string[]>;
  /** Streams the dump into the local server. Safe to repeat (the dump drops and recreates each schema). */
  loadBackup(onProgress: (text: string) => void): Promise<void>;
  /** Waits until the peer has applied everything this node wrote. */
  waitForPeer(): Promise<void>;
  /** Row counts equal to the manifest's, CHECKSUM TABLE equal on both nodes, replication running both ways. */
  verifyRestored(): Promise<string>;
}

export function restorePlan(actions: RestoreActions): Plan {
  let safetyPath: string | null = null;
  return {
    name: "restore",
    steps: [
      { name: "verify-backup", title: "verify the backup file", run: () => actions.verifyBackup() },
      {
        name: "safety-backup",
        title: "back up the current database first",
        run: async (context) => {
          safetyPath = await actions.safetyBackup();
          context.note(`safety backup: ${safetyPath}`);
        },
      },
      {
        name: "maintenance-on",
        title: "maintenance mode on both nodes (no failover, no restore of services)",
        run: async (context) => context.note(actions.maintenance === null ? "already in maintenance before the restore: left as it is" : await actions.maintenance(true)),
      },
      {
        name: "read-only",
        title: "make this node read-only for the applications",
        run: () => actions.setReadOnly(true),
        check: () => actions.readOnly(),
        rollback: () => actions.setReadOnly(false),
      },
      {
        name: "drop-extra-schemas",
        title: "drop the schemas the backup does not hold",
        run: async (context) => {
          const dropped = await actions.dropSchemasNotInBackup();
          context.note(dropped.length === 0 ? "none" : `dropped ${dropped.join(", ")}`);
        },
      },
      { name: "load", title: "load the backup (replicated to the peer)", run: (context) => actions.loadBackup((text) => context.note(text)) },
      { name: "wait-peer", title: "wait until the peer has applied the restore", run: () => actions.waitForPeer() },
      {
        name: "verify-restored",
        title: "verify row counts, CHECKSUM TABLE on both nodes and replication",
        run: async (context) => context.note(await actions.verifyRestored()),
      },
      {
        name: "writable",
        title: "make this node writable again",
        run: () => actions.setReadOnly(false),
        check: async () => !(await actions.readOnly()),
      },
      {
        name: "maintenance-off",
        title: "leave maintenance mode on both nodes",
        run: async (context) => context.note(actions.maintenance === null ? "the pair was in maintenance before the restore: left on" : await actions.maintenance(false)),
      },
    ],
  };
}
