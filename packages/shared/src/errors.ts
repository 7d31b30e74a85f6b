/**
 * Every failure an operator can meet has a stable code, a sentence saying what is wrong,
 * and a hint saying how to fix it. The CLI prints `message` then `hint`; logs carry `code`
 * and `fields` as structured data.
 */
export type ErrorCode =
  | "CONFIG_NOT_FOUND"
  | "CONFIG_UNREADABLE"
  | "CONFIG_SYNTAX"
  | "CONFIG_INVALID"
  | "SECRET_UNREADABLE"
  | "SECRET_INSECURE"
  | "SECRET_WEAK"
  | "CONTROL_UNREACHABLE"
  | "CONTROL_PERMISSION"
  | "CONTROL_REQUEST"
  | "DATA_DIR_PERMISSION"
  | "NOT_HOLDER"
  | "NO_ELIGIBLE_PEER"
  | "SWITCHOVER_FAILED"
  | "KEEPALIVED_CONFIG"
  | "KEEPALIVED_START"
  | "DB_UNREACHABLE"
  | "DB_AUTH"
  | "DB_SETTINGS"
  | "DB_REPLICATION"
  | "DB_ERRANT_GTID"
  | "DB_SEED_REFUSED"
  | "DB_SEED_FAILED"
  | "DB_TIMEOUT"
  | "SSH_CONNECT"
  | "SSH_AUTH"
  | "HOST_KEY_UNKNOWN"
  | "HOST_KEY_CHANGED"
  | "REMOTE_COMMAND"
  | "UPLOAD_VERIFY"
  | "PLAN_STEP_FAILED"
  | "PLAN_STATE"
  | "PREFLIGHT_FAILED"
  | "BACKUP_FAILED"
  | "BACKUP_INVALID"
  | "BACKUP_CORRUPT"
  | "BACKUP_REMOTE"
  /** A second agent for a data dir whose agent already runs. */
  | "AGENT_ALREADY_RUNNING"
  /** A port or socket the agent must listen on is taken by another process. */
  | "PORT_IN_USE"
  /** The data dir's file system is full (or out of inodes). */
  | "DISK_FULL"
  /** The machine refused a file or directory (EACCES/EPERM): not root, or a file's owner or mode. */
  | "PERMISSION_DENIED"
  /** A directory the agent must write is on a read-only file system (under systemd: outside the unit's ReadWritePaths). */
  | "READ_ONLY_DIR"
  /** The configured peer is this node itself (same name or address). */
  | "PEER_IS_SELF"
  /** The instance lock file cannot be opened or locked (a symlink, a missing flock). */
  | "AGENT_LOCK"
  | "USAGE"
  | "PEER_NOT_CONNECTED"
  /** The peer's agent is too old for the request (it would refuse the link on it): upgrade first. */
  | "PEER_TOO_OLD"
  | "OPERATION_REFUSED"
  | "OPERATION_FAILED"
  /** Another long operation (restore, upgrade, install, seed) runs on this node now. */
  | "OPERATION_RUNNING"
  /** upgrade-ha: a node's upgrade failed and that node was put back on the suite it ran. */
  | "UPGRADE_ROLLED_BACK"
  /** The witness's grant file is unreadable or malformed (it will not guess who held the grant). */
  | "WITNESS_STATE_INVALID"
  | "INTERNAL";

export class MnhaError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly fields: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { hint?: string; fields?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MnhaError";
    this.code = code;
    this.hint = options.hint;
    this.fields = options.fields ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; fields: Record<string, unknown> } {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}), fields: this.fields };
  }
}

/** One problem found in a config file: which field, what it held, what was expected. */
export interface ConfigProblem {
  path: string;
  value?: unknown;
  expected: string;
}

export class ConfigError extends MnhaError {
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    const lines = problems.map((p) => `  - ${p.path}: ${p.value === undefined ? "" : `got ${formatValue(p.value)}; `}expected ${p.expected}`);
    // A node configured as its own peer is a mistake of its own: it gets its own code.
    const selfPeer = problems.length > 0 && problems.every((p) => p.path.startsWith("peers[0].") && p.expected.includes("different from node."));
    super(selfPeer ? "PEER_IS_SELF" : "CONFIG_INVALID", `invalid configuration in ${file}:\n${lines.join("\n")}`, {
      hint: `fix the field${problems.length > 1 ? "s" : ""} above in ${file}; see docs/mnha.example.yaml for every field with its meaning`,
      fields: { file, problems },
    });
    this.problems = problems;
  }
}

export function formatValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(value);
  }
}

export function isMnhaError(error: unknown): error is MnhaError {
  return error instanceof MnhaError;
}
