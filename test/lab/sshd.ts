/**
 * Real OpenSSH in the lab, and each MN's own filesystem. Opt-in (`new Lab({ sshd: true })`):
 * most e2e tests do not need it.
 *
 * - Each MN runs its own /usr/sbin/sshd inside its network namespace and inside a mount
 *   namespace (node-view.sh) that overlays /etc, /var/lib, /opt and /usr/local with
 *   directories under the node's lab state dir. Commands run over SSH, and commands run
 *   with `nodeExec` (nsenter into sshd's namespaces), see the node's own /etc/mnha,
 *   /var/lib/mnha, /opt/mnha and /usr/local/bin; the machine's own files never change.
 * - The lab user (zsha2's execUser) has a random password. This machine has no sudo, so
 *   the user is a second name for uid 0 (`useradd -o -u 0`, as a "toor" account) with its
 *   own password: root's password is never touched, and the lab's sshd lets only this user
 *   in (AllowUsers). mnha itself runs remote commands under `sudo -n` when the login user
 *   is not root. `lab down` removes the user.
 *
 * The user removal is imported by teardown.ts: Node built-ins and constants only here.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { HOSTS, LAB_DIR, LAB_NAME, LAB_STATE_DIR, MN_NODES, type MnNode } from "./constants.js";

/** The lab's execUser: one per lab, so two labs on one machine never share it. */
export const LAB_SSH_USER = `mnha-${LAB_NAME}-ops`;
export const LAB_SSH_PASSWORD_FILE = `${LAB_STATE_DIR}/ssh-user-password`;
const NODE_VIEW_SCRIPT = resolve(LAB_DIR, "node-view.sh");
const SYSTEMD_NODE_SCRIPT = resolve(LAB_DIR, "systemd-node.sh");
/** Lives in the node's /var/lib overlay, so each node has its own ~/.ssh. */
const LAB_USER_HOME = `/var/lib/${LAB_SSH_USER}`;

export interface SshdPaths {
  dir: string;
  config: string;
  hostKey: string;
  pidFile: string;
  log: string;
  /** The node's filesystem overlays (upper dirs hold what the node changed). */
  viewRoot: string;
}

export function sshdPaths(node: MnNode): SshdPaths {
  const dir = `${LAB_STATE_DIR}/${node}/ssh`;
  return { dir, config: `${dir}/sshd_config`, hostKey: `${dir}/ssh_host_ed25519_key`, pidFile: `${dir}/sshd.pid`, log: `${dir}/sshd.log`, viewRoot: `${LAB_STATE_DIR}/${node}/view` };
}

/** Where a path of the node's own view is stored on the machine (its overlay's upper dir). */
export function nodeViewFile(node: MnNode, path: string): string {
  const mounts: [string, string][] = [["/etc/", "etc"], ["/var/lib/", "var-lib"], ["/opt/", "opt"], ["/usr/local/", "usr-local"]];
  for (const [prefix, name] of mounts) if (path.startsWith(prefix)) return `${sshdPaths(node).viewRoot}/${name}/upper/${path.slice(prefix.length)}`;
  throw new Error(`${path} is not in a node's own view (/etc, /var/lib, /opt, /usr/local)`);
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolveResult) => {
    const child = execFile(file, args, { timeout: options.timeoutMs ?? 15_000, encoding: "utf8", maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : -1;
      resolveResult({ code, stdout, stderr: stderr || (error?.message ?? "") });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

async function mustExec(file: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<Result> {
  const result = await exec(file, args, options);
  if (result.code !== 0) throw new Error(`lab sshd: ${file} ${args.join(" ")} failed (exit ${result.code}): ${result.stderr.trim()}`);
  return result;
}

function userExists(name: string): boolean {
  return readFileSync("/etc/passwd", "utf8").split("\n").some((line) => line.startsWith(`${name}:`));
}

/** Creates the lab user with a fresh random password (written 0600 to the state dir); returns it. */
export async function createLabUser(): Promise<string> {
  if (userExists(LAB_SSH_USER)) await removeLabUser();
  const password = randomBytes(18).toString("base64url");
  await mustExec("useradd", ["-o", "-u", "0", "-g", "0", "-M", "-d", LAB_USER_HOME, "-s", "/bin/sh", "-c", `mnha lab ${LAB_NAME} execUser`, LAB_SSH_USER]);
  // chpasswd reads name:password on stdin: the password is never in argv.
  await mustExec("chpasswd", [], { input: `${LAB_SSH_USER}:${password}\n` });
  mkdirSync(LAB_STATE_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(LAB_SSH_PASSWORD_FILE, `${password}\n`, { mode: 0o600 });
  return password;
}

/** Removes the lab user if it exists (idempotent; `lab down` calls it). Only ever this lab's user. */
export async function removeLabUser(): Promise<string | null> {
  if (!userExists(LAB_SSH_USER)) return null;
  // -f: userdel refuses a uid that running processes use, and uid 0 always is; this user owns no process of its own.
  const result = await exec("userdel", ["-f", LAB_SSH_USER]);
  if (result.code !== 0 && userExists(LAB_SSH_USER)) return `userdel ${LAB_SSH_USER}: ${result.stderr.trim()}`;
  return null;
}

export function labUserPassword(): string {
  return readFileSync(LAB_SSH_PASSWORD_FILE, "utf8").trim();
}

function sshdConfig(node: MnNode, paths: SshdPaths, options: { passwordAuthentication: boolean }): string {
  return [
    `# mnha lab ${LAB_NAME}: sshd of ${node}`,
    `ListenAddress ${HOSTS[node].address}`,
    "Port 22",
    `HostKey ${paths.hostKey}`,
    `PidFile ${paths.pidFile}`,
    `AllowUsers ${LAB_SSH_USER}`,
    "PermitRootLogin yes", // the lab user is uid 0 (see the top of this file); root itself is not in AllowUsers
    `PasswordAuthentication ${options.passwordAuthentication ? "yes" : "no"}`,
    "KbdInteractiveAuthentication yes",
    "PubkeyAuthentication yes",
    "UsePAM yes",
    "StrictModes no",
    "PrintMotd no",
    "UseDNS no",
    "Subsystem sftp internal-sftp",
    "",
  ].join("\n");
}

/** Makes the node's host key (a new one: `regenerate` simulates a reinstalled peer). */
export async function makeHostKey(node: MnNode, options: { regenerate?: boolean } = {}): Promise<void> {
  const paths = sshdPaths(node);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  if (options.regenerate === true) {
    rmSync(paths.hostKey, { force: true });
    rmSync(`${paths.hostKey}.pub`, { force: true });
  }
  if (!existsSync(paths.hostKey)) await mustExec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${LAB_NAME}-${node}`, "-f", paths.hostKey]);
}

/** The node's host key as OpenSSH prints its fingerprint (SHA256:...). */
export async function hostKeyFingerprint(node: MnNode): Promise<string> {
  const out = await mustExec("ssh-keygen", ["-l", "-E", "sha256", "-f", `${sshdPaths(node).hostKey}.pub`]);
  return out.stdout.split(/\s+/)[1] ?? "";
}

function readPid(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** The running sshd of the node (the process whose namespaces are the node's view), or null. */
export function sshdPid(node: MnNode): number | null {
  const pid = readPid(`${sshdPaths(node).pidFile}.launch`);
  return pid !== null && alive(pid) ? pid : null;
}

/**
 * Starts the node's sshd in its namespace and its own filesystem view; waits until it
 * accepts connections. Restarting keeps the view (the overlays' upper dirs persist).
 * `systemd: true` boots the node as a systemd machine instead (systemd-node.sh): systemd 252
 * as PID 1 of the node's own namespaces, running the lab's sshd as a service; then
 * `systemctl` works on the node as on a real MN, and nodeExec enters the node's PID namespace too.
 */
export async function startSshd(node: MnNode, options: { passwordAuthentication?: boolean; systemd?: boolean } = {}): Promise<number> {
  await stopSshd(node);
  const paths = sshdPaths(node);
  await makeHostKey(node);
  mkdirSync(paths.viewRoot, { recursive: true, mode: 0o700 });
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege-separation dir
  writeFileSync(paths.config, sshdConfig(node, paths, { passwordAuthentication: options.passwordAuthentication !== false }), { mode: 0o600 });
  await mustExec("/usr/sbin/sshd", ["-t", "-f", paths.config]);
  const log = openSync(paths.log, "a");
  const argv =
    options.systemd === true
      ? ["/bin/sh", SYSTEMD_NODE_SCRIPT, HOSTS[node].namespace, paths.viewRoot, LAB_STATE_DIR, node, paths.config, paths.log]
      : ["ip", "netns", "exec", HOSTS[node].namespace, "unshare", "-m", "--propagation", "private", "/bin/sh", NODE_VIEW_SCRIPT, paths.viewRoot, "/usr/sbin/sshd", "-D", "-e", "-f", paths.config];
  const child = spawn(argv[0] as string, argv.slice(1), { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`lab sshd: could not start sshd for ${node}`);
  // ip, unshare and sh each exec the next: this pid ends up being sshd itself (with systemd:
  // `unshare`, whose only child is the node's systemd).
  writeFileSync(`${paths.pidFile}.launch`, `${pid}\n`);
  const deadline = Date.now() + (options.systemd === true ? 30_000 : 5_000);
  while (Date.now() < deadline) {
    if (!alive(pid)) throw new Error(`lab sshd: ${options.systemd === true ? "the systemd node" : "sshd"} of ${node} exited at start: ${readFileSync(paths.log, "utf8").trim().split("\n").slice(-3).join(" | ")}`);
    const listening = await exec("ip", ["netns", "exec", HOSTS[node].namespace, "ss", "-Htln", `src ${HOSTS[node].address}:22`]);
    if (listening.stdout.includes(":22")) return pid;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`lab sshd: sshd of ${node} does not listen on ${HOSTS[node].address}:22 after ${options.systemd === true ? 30 : 5} s`);
}

/** The node's systemd (PID 1 of its own PID namespace) when it was booted as a systemd machine, else null. */
export function systemdInitPid(node: MnNode): number | null {
  const pid = sshdPid(node);
  if (pid === null) return null;
  try {
    const child = Number.parseInt(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)[0] ?? "", 10);
    return Number.isInteger(child) && readFileSync(`/proc/${child}/cmdline`, "utf8").startsWith("/lib/systemd/systemd") ? child : null;
  } catch {
    return null;
  }
}

export async function stopSshd(node: MnNode): Promise<void> {
  const pid = sshdPid(node);
  if (pid === null) return;
  // A systemd node goes down as a whole, like a power cut: SIGKILL to its PID 1 kills every
  // process of its PID namespace.
  const init = systemdInitPid(node);
  process.kill(init ?? pid, init === null ? "SIGTERM" : "SIGKILL");
  for (let attempt = 0; attempt < 100 && alive(pid); attempt++) await new Promise((r) => setTimeout(r, 50));
  if (init !== null) removeSystemdCgroups(node);
}

/** Removes the cgroups systemd-node.sh made for the node, and what its systemd made in them (idempotent; the teardown calls it). */
export function removeSystemdCgroups(node: string): string[] {
  const problems: string[] = [];
  const list = `${LAB_STATE_DIR}/${node}/systemd-cgroups`;
  if (!existsSync(list)) return problems;
  const removeTree = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeTree(`${dir}/${entry.name}`);
    rmdirSync(dir);
  };
  for (const dir of readFileSync(list, "utf8").split("\n").filter((line) => line.startsWith("/sys/fs/cgroup/"))) {
    try {
      if (existsSync(dir)) removeTree(dir);
    } catch (error) {
      problems.push(`removing cgroup ${dir}: ${(error as Error).message}`);
    }
  }
  return problems;
}

/** Runs a command on the node as the node sees itself: its network namespace and its own filesystem view. */
export function nodeExec(node: MnNode, argv: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<Result> {
  const pid = sshdPid(node);
  if (pid === null) throw new Error(`lab sshd: ${node}'s sshd is not running (start the lab with sshd: true)`);
  // A systemd node has its own /proc (its PID namespace's): enter that namespace too, or
  // /proc/self would name nobody.
  const init = systemdInitPid(node);
  if (init !== null) return exec("nsenter", ["-t", String(init), "-m", "-n", "-p", "-u", "-i", "-C", "--", ...argv], options);
  return exec("nsenter", ["-t", String(pid), "-m", "-n", "--", ...argv], options);
}

/**
 * What an install-ha (or upgrade-ha) run printed and, when it failed, the tail of each node's
 * installed agent log (its journal on a systemd node): a CI run keeps nothing else to read.
 */
export async function installOutput(result: Result): Promise<string> {
  const printed = `${result.stdout}\n${result.stderr}`;
  if (result.code === 0) return printed;
  const tails: string[] = [];
  for (const node of MN_NODES) {
    if (sshdPid(node) === null) continue;
    const tail = await nodeExec(node, ["sh", "-c", "tail -n 60 /var/lib/mnha/agent.log 2>/dev/null || journalctl -u mnha.service -n 60 --no-pager 2>&1"], { timeoutMs: 20_000 }).catch((error: unknown) => ({ stdout: String(error) }));
    tails.push(`--- ${node}: the installed agent's last log lines\n${tail.stdout}`);
  }
  return `${printed}\n${tails.join("\n")}`;
}

/** Sets up both nodes: the user, host keys, sshd in each node's own view (each a systemd machine with `systemd`). */
export async function setUpSshd(options: { systemd?: boolean } = {}): Promise<void> {
  await createLabUser();
  for (const node of MN_NODES) await startSshd(node, { systemd: options.systemd === true });
}
