/**
 * zsha2 operators type long flags with one dash (`status -json`, `demote -yes`). Commander
 * would read `-json` as the short flags -j -s -o -n, so these are rewritten to `--json`
 * before parsing.
 */

/** Long flags that zsha2 spells with a single dash. */
export const SINGLE_DASH_LONG_FLAGS = ["json", "yes", "config", "socket", "limit", "timeout", "type", "since", "until", "node", "service", "series", "keepui", "stopvip", "reason", "out", "help", "version", "nic", "gateway", "vip", "slave", "peer", "time-server", "db-root-pw", "bundle", "cleanup", "peerpass"] as const;

/** zsha2 commands that mnha does not offer yet: refused plainly, never faked. */
export const NOT_AVAILABLE_COMMANDS: readonly string[] = [];

const SINGLE_DASH = new RegExp(`^-(${SINGLE_DASH_LONG_FLAGS.join("|")})(=.*)?$`);

/** Rewrites `-json` to `--json` (and `-limit=5` to `--limit=5`) up to a literal `--`. */
export function rewriteSingleDashFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  let literal = false;
  for (const arg of args) {
    if (literal) {
      out.push(arg);
      continue;
    }
    if (arg === "--") literal = true;
    out.push(SINGLE_DASH.test(arg) ? `-${arg}` : arg);
  }
  return out;
}
