/**
 * The distribution's keepalived.service, kept from starting beside the Keepalived the agent
 * runs itself (keepalived.mode: child).
 *
 * Debian and Ubuntu enable keepalived.service when the package is installed, and a package
 * upgrade restarts an enabled unit (its postinst). Started beside the agent's own Keepalived it
 * would run /etc/keepalived/keepalived.conf (a former HA suite's VIP, say) on the same
 * segment. The unit file cannot keep it off with Conflicts=: systemd applies that both ways, so
 * the package upgrade would stop mnha.service instead, and with both units enabled systemd may
 * drop either from the boot transaction. So install-ha and upgrade-ha disable and mask the
 * unit on both nodes (a masked unit cannot be started, by apt or by habit), and remember what
 * it was so `install-ha --cleanup` can put it back. Every command is an argument array; the
 * one shell script takes its paths as positional parameters.
 */
import { MnhaError, type MnhaConfig } from "@mnha/shared";
import { runCommand } from "../checks/command.js";

export const DISTRIBUTION_KEEPALIVED_UNIT = "keepalived.service";
/** What an operator runs to do by hand what install-ha does (said wherever the unit is found on). */
export const DISTRIBUTION_KEEPALIVED_FIX = `systemctl disable --now ${DISTRIBUTION_KEEPALIVED_UNIT} && systemctl mask ${DISTRIBUTION_KEEPALIVED_UNIT}`;
/** What the unit was before install-ha masked it (enabled, disabled…); written once, read by --cleanup. */
export const KEEPALIVED_UNIT_BEFORE_FILE = "/etc/mnha/keepalived.service.before";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs an argument array on one node (this one, or the peer over SSH). */
export type NodeRunner = (argv: string[]) => Promise<Result>;

/**
 * `systemctl is-enabled`'s answer: "masked", "enabled", "disabled", "static"…; "absent" when
 * there is no such unit, "no-systemctl" on a node without systemd's tools, "unknown (…)" with
 * systemctl's own words when it cannot tell (never taken for "absent"). One command: over SSH,
 * one round trip.
 */
export async function distributionKeepalivedState(run: NodeRunner): Promise<string> {
  const result = await run(["sh", "-c", 'command -v systemctl >/dev/null 2>&1 || { echo no-systemctl; exit 0; }; exec systemctl is-enabled -- "$1"', "sh", DISTRIBUTION_KEEPALIVED_UNIT]);
  const state = result.stdout.trim().split("\n")[0]?.trim() ?? "";
  // An older systemctl prints nothing for a unit it cannot find (only stderr); a newer one prints "not-found".
  if (state === "not-found" || (state === "" && /No such file or directory|not found|does not exist/i.test(result.stderr))) return "absent";
  if (state !== "") return state;
  return `unknown (${result.stderr.trim().split("\n")[0] || `systemctl is-enabled exited ${result.code}`})`;
}

/** The unit as the running agent sees it at start: is-enabled's state, and whether it runs now. */
export async function readDistributionKeepalived(run: NodeRunner): Promise<{ enabled: string; active: boolean }> {
  const enabled = await distributionKeepalivedState(run);
  if (enabled === "absent" || enabled === "no-systemctl") return { enabled, active: false };
  const active = await run(["systemctl", "is-active", "--quiet", "--", DISTRIBUTION_KEEPALIVED_UNIT]);
  return { enabled, active: active.code === 0 };
}

/** Runs an argument array on this node through the agent's one command runner (checks/command.ts). */
export async function runHere(argv: string[]): Promise<Result> {
  const result = await runCommand(argv, { timeoutMs: 5_000, killGraceMs: 0 });
  return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr || (result.spawnError ?? "") };
}

/** Nothing can start the unit: masked, or not there at all. */
export function distributionKeepalivedHarmless(state: string): boolean {
  return state === "masked" || state === "absent" || state === "no-systemctl";
}

/**
 * Whether the agent with this config runs its own Keepalived, so the distribution's unit must
 * stay off. In service mode on keepalived.service the unit is the agent's Keepalived.
 */
export function distributionKeepalivedMustStayOff(config: Pick<MnhaConfig, "keepalived">): boolean {
  if (config.keepalived.mode === "child") return true;
  return config.keepalived.serviceName.replace(/\.service$/, "") !== "keepalived";
}

const MASK_SCRIPT = [
  'set -u; unit="$1"; before="$2"; state="$3"',
  // Written once: a rerun after the mask must not record "masked" as what it was before.
  'if [ ! -e "$before" ]; then mkdir -p "$(dirname "$before")" && printf "%s\\n" "$state" > "$before" || exit 1; fi',
  'if [ -d /run/systemd/system ]; then systemctl stop -- "$unit" || exit 1; fi',
  // Offline (systemd not PID 1) disable and mask still change the unit's symlinks, which is all they do.
  'systemctl disable -- "$unit" >/dev/null 2>&1 || true',
  'systemctl mask -- "$unit" 2>&1 || exit 1',
].join("\n");

/**
 * Disables and masks the distribution's keepalived.service on the node, unless nothing can
 * start it already. Returns a line for the output; throws with the node's message if
 * systemctl refuses.
 */
export async function maskDistributionKeepalived(run: NodeRunner, node: string): Promise<string> {
  const state = await distributionKeepalivedState(run);
  if (state === "masked") return `${node}: ${DISTRIBUTION_KEEPALIVED_UNIT} already masked`;
  if (state === "absent") return `${node}: no ${DISTRIBUTION_KEEPALIVED_UNIT} to keep off`;
  if (state === "no-systemctl") return `${node}: no systemctl: no ${DISTRIBUTION_KEEPALIVED_UNIT} to keep off`;
  const result = await run(["sh", "-c", MASK_SCRIPT, "sh", DISTRIBUTION_KEEPALIVED_UNIT, KEEPALIVED_UNIT_BEFORE_FILE, state]);
  const after = await distributionKeepalivedState(run);
  if (result.code !== 0 || after !== "masked") {
    const why = (result.stderr || result.stdout).trim().split("\n").slice(-2).join(" | ") || `it is ${after} afterwards`;
    throw new MnhaError("REMOTE_COMMAND", `masking ${DISTRIBUTION_KEEPALIVED_UNIT} on ${node} failed: ${why}`, {
      hint: `on ${node}: ${DISTRIBUTION_KEEPALIVED_FIX}, then run the same command again`,
    });
  }
  return `${node}: ${DISTRIBUTION_KEEPALIVED_UNIT} was ${state}; disabled and masked (mnha runs its own Keepalived; ${KEEPALIVED_UNIT_BEFORE_FILE} remembers it)`;
}

const RESTORE_SCRIPT = [
  'set -u; unit="$1"; before="$2"',
  '[ -e "$before" ] || exit 0',
  'state=$(head -n 1 "$before")',
  'systemctl unmask -- "$unit" >/dev/null 2>&1 || exit 1',
  'case "$state" in enabled|enabled-runtime) systemctl enable -- "$unit" >/dev/null 2>&1 || exit 1 ;; esac',
  'rm -f -- "$before"',
  'echo "$state"',
].join("\n");

/** Puts the unit back as it was before maskDistributionKeepalived (install-ha --cleanup). */
export async function restoreDistributionKeepalived(run: NodeRunner, node: string): Promise<string> {
  const result = await run(["sh", "-c", RESTORE_SCRIPT, "sh", DISTRIBUTION_KEEPALIVED_UNIT, KEEPALIVED_UNIT_BEFORE_FILE]);
  if (result.code !== 0)
    throw new MnhaError("REMOTE_COMMAND", `restoring ${DISTRIBUTION_KEEPALIVED_UNIT} on ${node} failed: ${(result.stderr || result.stdout).trim()}`, {
      hint: `on ${node}: systemctl unmask ${DISTRIBUTION_KEEPALIVED_UNIT} (and enable it if it was enabled: ${KEEPALIVED_UNIT_BEFORE_FILE} says)`,
    });
  const was = result.stdout.trim();
  if (was !== "") return `${node}: ${DISTRIBUTION_KEEPALIVED_UNIT} unmasked (${was} again)`;
  // No record: never masked by mnha, or the record was deleted by hand. A mask stays; say so rather than guess.
  if ((await distributionKeepalivedState(run)) === "masked")
    return `${node}: ${DISTRIBUTION_KEEPALIVED_UNIT} stays masked: there is no record of what it was before (${KEEPALIVED_UNIT_BEFORE_FILE} is gone); run systemctl unmask ${DISTRIBUTION_KEEPALIVED_UNIT} if this node should run it`;
  return `${node}: ${DISTRIBUTION_KEEPALIVED_UNIT} was not masked by mnha`;
}
