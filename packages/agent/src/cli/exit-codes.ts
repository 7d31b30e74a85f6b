/** The CLI's exit codes: stable, documented in docs/cli.md and in `mnha --help`. */
import type { ErrorCode } from "@mnha/shared";

export const ExitCode = {
  ok: 0,
  /** The operation was refused or failed (demote refused, agent error). */
  failed: 1,
  /** Bad command line or bad config file. */
  usage: 2,
  /** The agent is not running or not listening on the control socket. */
  unreachable: 3,
  /** Not allowed to talk to the agent: not root. */
  permission: 4,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  operation refused or failed (for example: demote refused)
  2  usage or config error
  3  agent unreachable (not running, or not listening on the socket); mnha agent: another agent already runs for this data dir
  4  permission denied (run as root)`;

export function exitCodeFor(code: ErrorCode): ExitCodeValue {
  switch (code) {
    case "CONTROL_UNREACHABLE":
      return ExitCode.unreachable;
    case "CONTROL_PERMISSION":
    case "PERMISSION_DENIED":
      return ExitCode.permission;
    case "CONFIG_NOT_FOUND":
    case "CONFIG_UNREADABLE":
    case "CONFIG_SYNTAX":
    case "CONFIG_INVALID":
    case "PEER_IS_SELF":
    case "SECRET_UNREADABLE":
    case "SECRET_INSECURE":
    case "CONTROL_REQUEST":
    case "USAGE":
      return ExitCode.usage;
    default:
      return ExitCode.failed;
  }
}
