/**
 * upgrade-mn as a step plan: the standby first, then a switchover, then the node that held
 * the VIP, all with the pair in maintenance (the agents watch but act on nothing, so an
 * installer restarting the MN services is not taken for a failure). Each node's steps are
 * named after the node, and "already done?" is the node's reported platform version, so a
 * rerun after a failure (or an interruption) resumes exactly there.
 *
 * The order (which node first) is decided once, by the caller, from who held the VIP when
 * the upgrade started, and kept for the reruns: after the switchover the holder changed.
 */
import type { Plan, PlanStep } from "../plan/step-plan.js";
import { assertSuiteRecentEnough, type InstallerInfo } from "./installer.js";

export interface UpgradeMnActions {
  installer: InstallerInfo;
  /** The standby when the upgrade started: upgraded first. */
  first: string;
  /** The VIP holder when the upgrade started: upgraded after the switchover. */
  second: string;
  suiteVersions(): Promise<{ node: string; suite: string }[]>;
  /** Maintenance on/off for both nodes; returns a line for the output. */
  maintenance(on: boolean): Promise<string>;
  /** The platform version the node reports now (null: unknown). */
  platformVersion(node: string): Promise<string | null>;
  /** Copies the installer to the node (SFTP, checksum verified); a no-op for this node. */
  stage(node: string): Promise<string>;
  /** Runs the installer on the node; throws with its output's tail when it fails. */
  install(node: string, onOutput: (line: string) => void): Promise<void>;
  /** Waits until the node's services are healthy and its database has caught up (progress: the remaining lag). */
  waitHealthy(node: string, onProgress?: (text: string) => void): Promise<string>;
  holder(): Promise<string | null>;
  /** Hands the VIP from `from` to `to` (planned switchover) and waits until `to` holds it. */
  switchover(from: string, to: string): Promise<string>;
}

export function upgradeMnPlan(actions: UpgradeMnActions): Plan {
  const target = actions.installer.version;
  const upgraded = async (node: string) => (await actions.platformVersion(node)) === target;
  const nodeSteps = (node: string): PlanStep[] => [
    {
      name: `stage-${node}`,
      title: `copy the installer to ${node}`,
      run: async (context) => context.note((await upgraded(node)) ? `${node} already runs platform ${target}: nothing to copy` : await actions.stage(node)),
    },
    {
      name: `install-${node}`,
      title: `install platform ${target} on ${node}`,
      check: () => upgraded(node),
      run: (context) => actions.install(node, (line) => context.note(line)),
    },
    {
      name: `wait-${node}`,
      title: `wait for ${node}'s services and database`,
      run: async (context) => context.note(await actions.waitHealthy(node, (text) => context.note(text))),
    },
  ];
  return {
    name: `upgrade-mn ${target}`,
    steps: [
      {
        name: "check-suite",
        title: `check the HA suite is recent enough (platform ${target} needs ${actions.installer.requiresSuite})`,
        run: async () => assertSuiteRecentEnough(actions.installer, await actions.suiteVersions()),
      },
      { name: "maintenance-on", title: "maintenance mode on both nodes", run: async (context) => context.note(await actions.maintenance(true)) },
      ...nodeSteps(actions.first),
      {
        name: "switchover",
        title: `switch the VIP over from ${actions.second} to ${actions.first}`,
        check: async () => (await actions.holder()) === actions.first,
        run: async (context) => context.note(await actions.switchover(actions.second, actions.first)),
      },
      ...nodeSteps(actions.second),
      { name: "maintenance-off", title: "leave maintenance mode on both nodes", run: async (context) => context.note(await actions.maintenance(false)) },
    ],
  };
}
