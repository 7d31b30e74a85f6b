/**
 * upgrade-ha as a step plan: the HA suite (the agent itself) on both nodes, the standby
 * first. For each node: copy the bundle (checksum verified), install it next to the suite it
 * replaces (install.sh keeps every release in /opt/mnha/releases), restart the agent and wait
 * until it rejoins the pair with a negotiated protocol version. Between the nodes a planned
 * switchover hands the VIP to the upgraded standby, so the old holder is upgraded as a standby
 * too: the client sees one planned switchover and no other gap.
 *
 * A failure while installing or restarting a node rolls that node back to the suite it ran
 * (its release's own install.sh, then its agent restarted on it) before the error is raised,
 * so the pair is served by two agents that work. "Already done?" checks read the nodes (the
 * installed suite, the running agent's version, the holder), so a rerun resumes exactly there.
 *
 * The order and each node's previous suite are decided once by the caller, when the upgrade
 * starts, and kept for the reruns (after the switchover the holder changed).
 */
import { MnhaError } from "@mnha/shared";
import type { StatusReport } from "../contracts.js";
import type { Plan, PlanStep, StepContext } from "../plan/step-plan.js";

export interface RunningAgent {
  version: string;
  /** The protocol versions the agent offers. */
  offered: number[];
  /** The version its link to the peer negotiated (null: no link). */
  negotiated: number | null;
}

export interface UpgradeHaActions {
  /** The suite version in the bundle. */
  target: string;
  /** The standby when the upgrade started: upgraded first. */
  first: string;
  /** The VIP holder when the upgrade started (where the command runs): upgraded after the switchover. */
  second: string;
  /** The suite each node ran when the upgrade started: what a failure rolls it back to. */
  previous: Readonly<Record<string, string>>;
  /** Throws unless the pair is healthy and the databases (if configured) are in sync; returns a line for the output. */
  assertPairReady(): Promise<string>;
  /** The suite /opt/mnha/current points to on the node (null: none or unreadable). */
  installedSuite(node: string): Promise<string | null>;
  /** What the node's running agent reports (null: it does not answer). */
  runningAgent(node: string): Promise<RunningAgent | null>;
  /** Whether the bundle is already unpacked (checksum verified) in the node's staging dir. */
  staged(node: string): Promise<boolean>;
  /** Copies the bundle to the node (SFTP, SHA-256 verified there) and unpacks it in the staging dir. */
  stage(node: string): Promise<string>;
  /** Runs the staged bundle's install.sh on the node; the previous release stays in place. */
  install(node: string): Promise<string>;
  /** Points the node back at an installed release (that release's own install.sh). */
  activate(node: string, version: string): Promise<string>;
  /** Restarts the node's agent on the installed suite (refused on the VIP holder). */
  restartAgent(node: string): Promise<string>;
  /** Waits until the node's agent runs `version` and the pair is healthy again; the line names the negotiated protocol. */
  waitRejoined(node: string, version: string): Promise<string>;
  holder(): Promise<string | null>;
  /** Planned switchover from `from` (this node) to `to`; waits until `to` holds the VIP. */
  handover(from: string, to: string): Promise<string>;
  /** Removes the staged bundle from the node. */
  cleanStage(node: string): Promise<void>;
}

export function upgradeHaPlan(actions: UpgradeHaActions): Plan {
  const { target } = actions;
  const installed = async (node: string) => (await actions.installedSuite(node)) === target;
  const runsTarget = async (node: string) => (await actions.runningAgent(node))?.version === target;

  /**
   * Puts the node back on the suite it ran before, restarts its agent on it if it runs
   * anything else, waits until it rejoins, and raises the original failure with what was done.
   */
  const rollBack = async (node: string, cause: unknown, context: StepContext): Promise<never> => {
    const previous = actions.previous[node];
    const causeText = cause instanceof Error ? cause.message : String(cause);
    const causeHint = cause instanceof MnhaError ? cause.hint : undefined;
    if (previous === undefined) throw cause;
    context.note(`${node}: rolling back to suite ${previous} (${causeText})`);
    try {
      context.note(await actions.activate(node, previous));
      if ((await actions.runningAgent(node))?.version !== previous) context.note(await actions.restartAgent(node));
      context.note(await actions.waitRejoined(node, previous));
    } catch (rollbackError) {
      throw new MnhaError("OPERATION_FAILED", `${causeText}; rolling ${node} back to suite ${previous} failed too: ${(rollbackError as Error).message}`, {
        hint: `on ${node}: /opt/mnha/releases/${previous}/install.sh, then restart its agent (mnha status shows whether it rejoined)`,
        cause: rollbackError,
      });
    }
    throw new MnhaError("UPGRADE_ROLLED_BACK", `${causeText}; ${node} was rolled back to suite ${previous} and rejoined the pair`, {
      hint: causeHint ?? `fix the cause on ${node}`,
      cause,
    });
  };

  const nodeSteps = (node: string): PlanStep[] => [
    {
      name: `stage-${node}`,
      title: `copy the suite bundle ${target} to ${node} and verify its SHA-256`,
      check: async () => (await installed(node)) || (await actions.staged(node)),
      run: async (context) => context.note(await actions.stage(node)),
    },
    {
      name: `install-${node}`,
      title: `install suite ${target} on ${node} (suite ${actions.previous[node] ?? "?"} kept for rollback)`,
      check: () => installed(node),
      run: async (context) => {
        context.note(await actions.assertPairReady());
        try {
          context.note(await actions.install(node));
        } catch (error) {
          await rollBack(node, error, context);
        }
      },
    },
    {
      name: `restart-${node}`,
      title: `restart ${node}'s agent on suite ${target} and wait until it rejoins`,
      check: () => runsTarget(node),
      run: async (context) => {
        try {
          context.note(await actions.restartAgent(node));
          context.note(await actions.waitRejoined(node, target));
        } catch (error) {
          await rollBack(node, error, context);
        }
      },
    },
  ];

  return {
    name: `upgrade-ha ${target}`,
    steps: [
      {
        name: "check-pair",
        title: "check the pair is healthy and the databases in sync",
        run: async (context) => context.note(await actions.assertPairReady()),
      },
      ...nodeSteps(actions.first),
      {
        name: "handover",
        title: `hand the VIP over from ${actions.second} to ${actions.first} (planned switchover)`,
        // Also done when the old holder already runs the target (a run started on the other node).
        check: async () => (await actions.holder()) === actions.first || (await runsTarget(actions.second)),
        run: async (context) => {
          context.note(await actions.assertPairReady());
          context.note(await actions.handover(actions.second, actions.first));
        },
      },
      ...nodeSteps(actions.second),
      {
        name: "verify",
        title: `check both nodes run suite ${target} and the pair is healthy`,
        run: async (context) => {
          for (const node of [actions.first, actions.second]) {
            const agent = await actions.runningAgent(node);
            if (agent?.version !== target) throw new MnhaError("OPERATION_FAILED", `${node}'s agent runs ${agent?.version ?? "nothing that answers"}, not suite ${target}`, { hint: `see mnha version on ${node}` });
            context.note(`${node}: agent ${agent.version}, offers protocol ${agent.offered.join(",")}, link v${agent.negotiated ?? "none"}`);
          }
          context.note(await actions.assertPairReady());
          for (const node of [actions.first, actions.second]) await actions.cleanStage(node);
        },
      },
    ],
  };
}

/**
 * Why the pair's databases are not in sync for an upgrade (null: in sync, or no database
 * configured). Reads the status report: this node's MariaDB as just polled, the peer's as its
 * last heartbeat said. In sync means both up, no broken or unseeded replica, every running
 * replica with both threads up and no lag.
 */
export function databaseSyncProblem(report: StatusReport): string | null {
  if (report.db === undefined) return null;
  const nodes = [
    { node: report.self.node, db: report.db.self },
    { node: report.peer.node, db: report.db.peer },
  ];
  for (const { node, db } of nodes) {
    if (db === null) return `${node}'s database state is not known yet`;
    if (!db.alive) return `${node}'s database is down${db.error === null ? "" : ` (${db.error})`}`;
    if (db.seedIncomplete) return `${node}'s database seed is incomplete (mnha db seed)`;
    if (db.broken !== null) return `${node}'s replication is broken: ${db.broken}`;
  }
  const standby = report.vipOwner === report.self.node ? nodes[1] : nodes[0];
  const replica = standby?.db;
  if (standby && replica && (replica.slaveIoRunning !== "Yes" || replica.slaveSqlRunning !== "Yes")) {
    return `${standby.node}'s replica does not run (IO ${replica.slaveIoRunning ?? "unknown"}, SQL ${replica.slaveSqlRunning ?? "unknown"})`;
  }
  for (const { node, db } of nodes) {
    if (db !== null && db.secondsBehindMaster !== null && db.secondsBehindMaster > 0) return `${node}'s replica is ${db.secondsBehindMaster} s behind`;
  }
  return null;
}
