/**
 * The operator's action commands — a service's restore, its stop and start (stop-node,
 * start-node, maintenance), the maintenance hooks — and where they run.
 *
 * Under systemd the agent runs inside mnha.service's sandbox (deploy/mnha.service: a read-only
 * file system but for /var/lib/mnha and /run/mnha, a private /tmp, no new privileges, a
 * capability bounding set) and in its cgroup, and every child it forks inherits all of it.
 * Checks are fine there: they only look. An action is not: `zstack-ctl start_node`, the default
 * restore of the MN service, starts the MN's daemon, which would be born inside the sandbox
 * (its logs under /usr/local and /var/log refused with EROFS, so it fails to start) and inside
 * mnha's cgroup. So under systemd each action runs as a transient service of its own
 * (`systemd-run --wait --pipe`): systemd starts it outside the sandbox, in a clean environment,
 * as `systemctl start` starts any unit, and systemd-run hands back its output and exit status.
 * `KillMode=process` leaves the daemon an action starts running when the action's own process
 * exits; `RuntimeMaxSec` bounds that process, since killing systemd-run at the action's
 * timeout would not stop the unit. This does not widen what the agent can do: from inside the
 * sandbox it can already ask systemd to start any unit (`systemctl restart mariadb`).
 *
 * Outside systemd (the lab, a container, `mnha agent` from a shell) there is no sandbox to
 * leave, and actions run directly, as before.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export type ActionKind = "restore" | "stop" | "start" | "hook";

export type ActionMode = { kind: "systemd-run"; binary: string; systemdVersion: number } | { kind: "direct"; reason: string };

/** --wait (232), --pipe (235) and --collect (236): the oldest systemd-run that has all three. */
export const MIN_SYSTEMD_RUN_VERSION = 236;

/**
 * The D-Bus system bus. With --wait or --pipe systemd-run talks to systemd through it, never
 * through systemd's private socket ("ref/unref is not supported via the limited direct
 * connection", systemd's src/run/run.c): on an MN without dbus (a minimal install) every
 * action would fail with "Failed to connect to bus".
 */
export const SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket";

export interface ActionModeProbe {
  env: NodeJS.ProcessEnv;
  exists: (path: string) => boolean;
  /** `systemd-run --version`'s first line, or null when it cannot be run. */
  version: (binary: string) => string | null;
}

const realProbe: ActionModeProbe = {
  env: process.env,
  exists: existsSync,
  version: (binary) => {
    try {
      return execFileSync(binary, ["--version"], { encoding: "utf8", timeout: 3_000, stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0] ?? null;
    } catch {
      return null;
    }
  },
};

/** systemd sets INVOCATION_ID for every service it starts: the agent is in mnha.service (or another unit). */
export function startedBySystemd(env: Readonly<Record<string, string | undefined>>): boolean {
  return env["INVOCATION_ID"] !== undefined && env["INVOCATION_ID"] !== "";
}

/** Where actions run on this node: decided once per process (actionMode()). */
export function detectActionMode(probe: ActionModeProbe = realProbe): ActionMode {
  if (!startedBySystemd(probe.env)) return { kind: "direct", reason: "the agent was not started by systemd" };
  if (!probe.exists("/run/systemd/system")) return { kind: "direct", reason: "systemd is not running as PID 1" };
  const binary = ["/usr/bin/systemd-run", "/bin/systemd-run"].find((path) => probe.exists(path));
  if (binary === undefined) return { kind: "direct", reason: "systemd-run is not installed: actions run inside mnha.service's sandbox" };
  const line = probe.version(binary);
  const version = Number(/^systemd (\d+)/.exec(line ?? "")?.[1] ?? Number.NaN);
  if (!Number.isFinite(version)) return { kind: "direct", reason: `${binary} --version did not say its version: actions run inside mnha.service's sandbox` };
  if (version < MIN_SYSTEMD_RUN_VERSION) return { kind: "direct", reason: `systemd ${version} is older than ${MIN_SYSTEMD_RUN_VERSION} (systemd-run has no --wait, --pipe or --collect): actions run inside mnha.service's sandbox` };
  if ((probe.env["DBUS_SYSTEM_BUS_ADDRESS"] ?? "") === "" && !probe.exists(SYSTEM_BUS_SOCKET)) {
    return { kind: "direct", reason: `there is no D-Bus system bus (${SYSTEM_BUS_SOCKET}), which systemd-run --wait needs: actions run inside mnha.service's sandbox (install dbus, then restart mnha.service)` };
  }
  return { kind: "systemd-run", binary, systemdVersion: version };
}

let detected: ActionMode | null = null;

/** This process's action mode, detected at the first call. */
export function actionMode(): ActionMode {
  detected ??= detectActionMode();
  return detected;
}

export function describeActionMode(mode: ActionMode): string {
  return mode.kind === "systemd-run" ? `as transient systemd services (systemd-run, systemd ${mode.systemdVersion}), outside mnha.service's sandbox` : `directly (${mode.reason})`;
}

let sequence = 0;

/** A unit name part from anything: systemd allows letters, digits and ":-_.\\". */
function unitPart(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 40) || "_";
}

/**
 * The argv that runs `command` as this action: the command itself, or systemd-run around it.
 * The command's own words stay an argument array (systemd-run passes them on untouched).
 */
export function actionArgv(command: readonly string[], action: { kind: ActionKind; name: string; timeoutMs: number }, mode: ActionMode = actionMode(), now: () => number = Date.now): readonly string[] {
  if (mode.kind === "direct") return command;
  sequence = (sequence + 1) % 1_000_000;
  const unit = `mnha-${action.kind}-${unitPart(action.name)}-${now()}-${sequence}`;
  return [
    mode.binary,
    "--quiet",
    "--no-ask-password",
    "--collect",
    "--wait",
    "--pipe",
    `--unit=${unit}`,
    `--description=mnha ${action.kind} of ${action.name}`,
    "--property=KillMode=process",
    `--property=RuntimeMaxSec=${Math.max(1, Math.ceil(action.timeoutMs / 1000))}`,
    "--",
    ...command,
  ];
}
