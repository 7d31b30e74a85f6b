/**
 * Making a Unix socket path safe to listen on: a root-owned private parent directory, and no
 * stale socket left by a dead agent — without ever stealing the socket of a live one. The
 * data directory is checked by the same rule.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync, type Stats } from "node:fs";
import { connect } from "node:net";
import { dirname } from "node:path";
import { MnhaError } from "@mnha/shared";

/** Only root may own the directory that holds the control socket. */
const REQUIRED_OWNER_UID = 0;

interface PrivateDirRule {
  /** "the control socket's directory" */
  what: string;
  code: "CONTROL_PERMISSION" | "DATA_DIR_PERMISSION";
  /** The config key that names another place. */
  configKey: string;
  /** Owners accepted besides root. */
  alsoOwner: number | null;
}

/** Creates the socket's directory (mode 0700) or checks that the existing one is private. */
export function ensurePrivateSocketDir(socketPath: string): void {
  ensurePrivateDir(dirname(socketPath), { what: "the control socket's directory", code: "CONTROL_PERMISSION", configKey: "controlSocket", alsoOwner: null });
}

/**
 * The data dir (epoch, store, Keepalived's files) gets the same treatment: created 0700 when
 * missing; else it must be a real directory owned by root (or by the user running the agent)
 * and writable by nobody else, or anyone who can write there could swap the epoch or the
 * Keepalived config under the agent.
 */
export function ensurePrivateDataDir(dataDir: string): void {
  ensurePrivateDir(dataDir, { what: "the data directory", code: "DATA_DIR_PERMISSION", configKey: "dataDir", alsoOwner: process.getuid?.() ?? null });
}

function ensurePrivateDir(dir: string, rule: PrivateDirRule): void {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw unusableDir(dir, error, rule);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // mkdir's mode is filtered by the umask; set it exactly.
      chmodSync(dir, 0o700);
    } catch (mkdirError) {
      throw unusableDir(dir, mkdirError, rule);
    }
    return;
  }
  if (!stats.isDirectory()) {
    throw new MnhaError(rule.code, `${rule.what} ${dir} is not a directory${stats.isSymbolicLink() ? " (it is a symbolic link)" : ""}`, {
      hint: `remove ${dir}, or set ${rule.configKey} in the config to a path in a root-owned directory`,
      fields: { dir },
    });
  }
  if (stats.uid !== REQUIRED_OWNER_UID && stats.uid !== rule.alsoOwner) {
    throw new MnhaError(rule.code, `${rule.what} ${dir} is owned by uid ${stats.uid}, not root`, {
      hint: `run: chown root:root ${dir} && chmod 700 ${dir}`,
      fields: { dir, uid: stats.uid },
    });
  }
  if ((stats.mode & 0o022) !== 0) {
    throw new MnhaError(rule.code, `${rule.what} ${dir} is writable by other users (mode ${(stats.mode & 0o777).toString(8)})`, {
      hint: `run: chmod 700 ${dir}`,
      fields: { dir, mode: (stats.mode & 0o777).toString(8) },
    });
  }
}

/**
 * Removes a socket file that nobody listens on. Refuses when an agent answers on it, or when
 * the path holds something that is not a socket.
 */
export async function removeStaleSocket(socketPath: string, probeTimeoutMs = 1_000): Promise<"absent" | "removed"> {
  let stats: Stats;
  try {
    stats = lstatSync(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw new MnhaError("CONTROL_PERMISSION", `cannot inspect ${socketPath} (${(error as NodeJS.ErrnoException).code ?? "error"})`, {
      hint: "run the agent as root",
      fields: { socketPath },
    });
  }
  if (!stats.isSocket()) {
    throw new MnhaError("USAGE", `${socketPath} exists and is not a socket`, {
      hint: `remove it, or set controlSocket in the config to another path`,
      fields: { socketPath },
    });
  }
  const probe = await probeSocket(socketPath, probeTimeoutMs);
  if (probe !== "refused") {
    throw new MnhaError("USAGE", `another mnha agent is already listening on ${socketPath}`, {
      hint: "stop it first (systemctl stop mnha), or give this agent another controlSocket in its config",
      fields: { socketPath, probe },
    });
  }
  try {
    unlinkSync(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return "removed";
}

/** "listening": someone accepted; "refused": a dead socket file; "no-answer": neither in time. */
export function probeSocket(socketPath: string, timeoutMs: number): Promise<"listening" | "refused" | "no-answer"> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const timer = setTimeout(() => finish("no-answer"), timeoutMs);
    function finish(result: "listening" | "refused" | "no-answer"): void {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on("error", () => undefined);
      socket.destroy();
      resolve(result);
    }
    socket.once("connect", () => finish("listening"));
    socket.once("error", (error: NodeJS.ErrnoException) => finish(error.code === "ECONNREFUSED" || error.code === "ENOENT" ? "refused" : "no-answer"));
  });
}

function unusableDir(dir: string, error: unknown, rule: PrivateDirRule): MnhaError {
  const code = (error as NodeJS.ErrnoException).code ?? "error";
  return new MnhaError(rule.code, `cannot create or inspect ${rule.what} ${dir} (${code})`, {
    hint: `run the agent as root, or set ${rule.configKey} in the config to a path in a root-owned directory`,
    fields: { dir, errno: code },
  });
}
