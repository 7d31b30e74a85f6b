/**
 * `mnha restore <backup>` as a step plan. The backup is loaded into this node's MariaDB
 * with the binary log on (this node's GTID history stays whole: no RESET MASTER here). Then
 * the peer's agent re-seeds the peer from this node (db/seed.ts, as `mnha db resync`), so a
 * peer whose replica was broken or whose data diverged ends up a copy too, replicating from
 * the restored position. Without agents (--no-maintenance) replication alone carries the
 * load to the peer. While it runs this node is read-only for the applications (their
 * accounts lack READ ONLY ADMIN); root loads.
 *
 * The MN services are stopped on both nodes for the duration (the UI and the database keep
 * running; the pair is in maintenance, so the agents neither restore them nor fail over).
 * Steps before drop-extra-schemas change no data: a failure there is undone (services
 * started, maintenance left; see DATA_STEPS), one after it stops with the services down and
 * says what to run.
 *
 * The steps depend only on RestoreActions, so the ordering, resume and failure handling are
 * tested with an in-memory double; restore-mariadb.ts carries them out on real servers.
 */
import type { PlanStateStore } from "../plan/plan-state.js";
import { rollbackPlan, type Plan, type PlanEvent } from "../plan/step-plan.js";

export interface RestoreActions {
  /**
   * Maintenance mode on both nodes for the duration (the agents watch but act on nothing: no
   * failover, no service restore while the data is replaced). Returns a line for the output.
   * Null: the pair was already in maintenance before the restore, and stays so.
   */
  maintenance: ((on: boolean) => Promise<string>) | null;
  /**
   * Stops or starts the MN services on both nodes (the UI and the database kept), through the
   * agents, with the pair in maintenance so that they do not restore them meanwhile. Returns
   * a line for the output. Null: no agents (--no-maintenance): the operator stops them.
   */
  services: ((action: "stop" | "start") => Promise<string>) | null;
  /** Verifies the backup file (checksum, gzip stream, trailer, manifest counts). */
  verifyBackup(): Promise<void>;
  /** Takes a backup of the current database first; returns its path (null: no application data here, nothing to keep). */
  safetyBackup(): Promise<string | null>;
  readOnly(): Promise<boolean>;
  setReadOnly(on: boolean): Promise<void>;
  /** Drops the application schemas the backup does not hold (they would survive the load). */
  dropSchemasNotInBackup(): Promise<string[]>;
  /** Streams the dump into the local server. Safe to repeat (the dump drops and recreates each schema). */
  loadBackup(onProgress: (text: string) => void): Promise<void>;
  /**
   * Asks the peer's agent to make its database a copy of this node's (the pair in
   * maintenance); waits for it, bounded. Safe to repeat (the copy starts over). Returns a line
   * for the output. Null: no agents (--no-maintenance): replication carries the load.
   */
  reseedPeer: (() => Promise<string>) | null;
  /** Waits until the peer has applied everything this node wrote. */
  waitForPeer(): Promise<void>;
  /** Row counts equal to the manifest's, CHECKSUM TABLE equal on both nodes, replication running both ways. */
  verifyRestored(): Promise<string>;
}

/** The first step that changes data: a failure before it is rolled back, one from it on is not. */
export const FIRST_DATA_STEP = "drop-extra-schemas";

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
          context.note(safetyPath === null ? "no application data here (a new server): no safety backup needed" : `safety backup: ${safetyPath}`);
        },
      },
      {
        name: "maintenance-on",
        title: "maintenance mode on both nodes (no failover, no restore of services)",
        run: async (context) => context.note(actions.maintenance === null ? "already in maintenance before the restore: left as it is" : await actions.maintenance(true)),
        rollback: async (context) => {
          if (actions.maintenance !== null) context.note(await actions.maintenance(false));
        },
      },
      {
        name: "stop-services",
        title: "stop the MN services on both nodes (the UI and the database keep running)",
        run: async (context) => context.note(actions.services === null ? "no agents: stop the MN services on both nodes yourself (UI may stay)" : await actions.services("stop")),
        rollback: async (context) => {
          if (actions.services !== null) context.note(await actions.services("start"));
        },
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
      { name: "load", title: "load the backup", run: (context) => actions.loadBackup((text) => context.note(text)) },
      {
        name: "reseed-peer",
        title: "re-seed the peer from this node (its database becomes a copy of this one)",
        run: async (context) => context.note(actions.reseedPeer === null ? "no agents: the peer gets the load through replication" : await actions.reseedPeer()),
      },
      { name: "wait-peer", title: "wait until the peer has caught up with this node", run: () => actions.waitForPeer() },
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
        name: "start-services",
        title: "start the MN services on both nodes again",
        run: async (context) => context.note(actions.services === null ? "no agents: start the MN services on both nodes yourself" : await actions.services("start")),
      },
      {
        name: "maintenance-off",
        title: "leave maintenance mode on both nodes",
        run: async (context) => context.note(actions.maintenance === null ? "the pair was in maintenance before the restore: left on" : await actions.maintenance(false)),
      },
    ],
  };
}

/**
 * After a failed step: when no data was changed yet (the step comes before FIRST_DATA_STEP),
 * undoes the failed step (it may have half run: some services stopped) and every finished
 * one, newest first (read-only off, services started, maintenance left), and forgets the
 * state. Returns false, changing nothing, when the data was already touched.
 */
export async function undoRestoreBeforeData(plan: Plan, failedStep: string, options: { store: PlanStateStore; onEvent: (event: PlanEvent) => void }): Promise<boolean> {
  const names = plan.steps.map((s) => s.name);
  const index = names.indexOf(failedStep);
  const firstData = names.indexOf(FIRST_DATA_STEP);
  if (index < 0 || index >= firstData) return false;
  // A rerun of a restore that had already touched the data (a step before it re-checked and failed): not undone.
  const done = options.store.load()?.done ?? [];
  if (done.some((name) => names.indexOf(name) >= firstData)) return false;
  const half = plan.steps[index];
  if (half?.rollback) await half.rollback({ note: (text) => options.onEvent({ kind: "note", step: failedStep, text }) });
  await rollbackPlan(plan, options);
  return true;
}
