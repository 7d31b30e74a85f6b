/**
 * install-ha's look at both MNs' MariaDB before anything changes: which socket the running
 * server listens on, whether the root password (-db-root-pw) logs in, the settings
 * replication needs, and what each database holds (for the confirmation that names what
 * the seed overwrites). The same shell script runs on both nodes (locally, and over SSH);
 * the password travels on stdin into a 0600 option file, never in argv.
 */
import { execFile } from "node:child_process";
import type { DatabaseSummary, SchemaSummary } from "../db/seed.js";
import { quoteOption } from "../db/client-files.js";
import { describeSummary } from "../db/describe.js";
import type { PreflightRow } from "./preflight.js";
import type { SshSession } from "./ssh-session.js";

export interface DatabaseProbe {
  ok: boolean;
  /** The socket found (or given with --db-socket); null: none. */
  socket: string | null;
  error: string | null;
  version: string | null;
  serverId: number | null;
  logBin: boolean | null;
  gtidDomainId: number | null;
  summary: DatabaseSummary | null;
}

export interface DatabaseProbes {
  local: DatabaseProbe;
  peer: DatabaseProbe;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * $1: the socket (empty: find it), $2: the SQL; the client option file comes on stdin.
 * The socket is the one a running mariadbd/mysqld listens on in this network namespace
 * (ss), else the first of the usual paths that is a socket.
 */
export const PROBE_SCRIPT = [
  'sock="$1"',
  'if [ -z "$sock" ]; then sock=$(ss -Hxlp 2>/dev/null | awk \'/"(mariadbd|mysqld)"/ { for (i = 1; i <= NF; i++) if ($i ~ /^\\//) { print $i; exit } }\'); fi',
  'if [ -z "$sock" ]; then for s in /run/mysqld/mysqld.sock /var/run/mysqld/mysqld.sock /var/lib/mysql/mysql.sock /tmp/mysql.sock; do if [ -S "$s" ]; then sock="$s"; break; fi; done; fi',
  'if [ -z "$sock" ]; then echo "no MariaDB socket found (is MariaDB running?)" >&2; exit 3; fi',
  'printf "socket\\t%s\\n" "$sock"',
  'client=$(command -v mariadb || command -v mysql) || { echo "no MariaDB client (mariadb) installed" >&2; exit 4; }',
  'umask 077',
  'f=$(mktemp) || exit 5',
  'cat > "$f"',
  '"$client" --defaults-extra-file="$f" --socket="$sock" --batch --skip-column-names --connect-timeout=5 -e "$2"',
  'rc=$?',
  'rm -f "$f"',
  'exit $rc',
].join("\n");

export const PROBE_SQL = [
  "SELECT 'server', VERSION(), @@GLOBAL.server_id, @@GLOBAL.log_bin, @@GLOBAL.gtid_domain_id;",
  "SELECT 'schema', s.SCHEMA_NAME, COUNT(t.TABLE_NAME), COALESCE(SUM(t.TABLE_ROWS), 0), COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0)",
  "FROM information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME",
  "WHERE s.SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') GROUP BY s.SCHEMA_NAME ORDER BY s.SCHEMA_NAME;",
].join(" ");

export function probeArgv(socketFlag: string | null): string[] {
  return ["sh", "-c", PROBE_SCRIPT, "sh", socketFlag ?? "", PROBE_SQL];
}

export function optionFile(rootPassword: string): string {
  return `[client]\nuser=root\npassword=${quoteOption(rootPassword)}\n`;
}

/** Reads the probe's output (or its failure) into what the table and the notice need. */
export function parseProbe(result: Result): DatabaseProbe {
  const probe: DatabaseProbe = { ok: false, socket: null, error: null, version: null, serverId: null, logBin: null, gtidDomainId: null, summary: null };
  const schemas: SchemaSummary[] = [];
  for (const line of result.stdout.split("\n")) {
    const cells = line.split("\t");
    if (cells[0] === "socket") probe.socket = cells[1] ?? null;
    else if (cells[0] === "server" && cells.length >= 5) {
      probe.version = (cells[1] ?? "").split("-")[0] ?? null;
      probe.serverId = Number(cells[2]);
      probe.logBin = cells[3] === "1";
      probe.gtidDomainId = Number(cells[4]);
    } else if (cells[0] === "schema" && cells.length >= 5) {
      schemas.push({ name: cells[1] ?? "", tables: Number(cells[2]), approxRows: Number(cells[3]), bytes: Number(cells[4]) });
    }
  }
  if (result.code !== 0 || probe.version === null) {
    const message = result.stderr.trim().split("\n").filter((l) => l.trim() !== "" && !/Deprecated program name/.test(l)).slice(-1)[0] ?? `exit ${result.code}`;
    probe.error = /ERROR 1045|Access denied/.test(message) ? "the root password was refused" : message.slice(0, 160);
    return probe;
  }
  probe.ok = true;
  probe.summary = {
    schemas,
    tables: schemas.reduce((n, x) => n + x.tables, 0),
    approxRows: schemas.reduce((n, x) => n + x.approxRows, 0),
    bytes: schemas.reduce((n, x) => n + x.bytes, 0),
  };
  return probe;
}

function runLocal(argv: string[], input: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(argv[0] as string, argv.slice(1), { timeout: 60_000, encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

/** Probes both nodes; records each node's socket in `database` for the configs. */
export async function probeDatabases(session: SshSession, database: { rootPassword: string; socketFlag: string | null; sockets?: { local: string; peer: string } }): Promise<DatabaseProbes> {
  const argv = probeArgv(database.socketFlag);
  const input = optionFile(database.rootPassword);
  const [local, peer] = await Promise.all([runLocal(argv, input), session.exec(argv, { input, timeoutMs: 60_000 })]);
  const probes = { local: parseProbe(local), peer: parseProbe(peer) };
  if (probes.local.socket !== null && probes.peer.socket !== null) database.sockets = { local: probes.local.socket, peer: probes.peer.socket };
  return probes;
}

/** The database rows of the preflight table. */
export function databaseRows(probes: DatabaseProbes, names: [string, string] = ["this node", "the peer"]): PreflightRow[] {
  const { local, peer } = probes;
  const fixFor = (probe: DatabaseProbe, name: string): string | null => {
    if (probe.ok) return null;
    if (probe.socket === null) return `${name}: start MariaDB, or pass its socket with --db-socket`;
    if (probe.error === "the root password was refused") return `${name}: -db-root-pw (or --db-root-pw-file) must be the MariaDB root password of both MNs`;
    return `${name}: ${probe.error ?? "see the message"}`;
  };
  const loginFixes = [fixFor(local, names[0]), fixFor(peer, names[1])].filter((f): f is string => f !== null);
  const rows: PreflightRow[] = [
    { id: "db-socket", title: "MariaDB socket", values: [local.socket ?? "none found", peer.socket ?? "none found"], status: local.socket !== null && peer.socket !== null ? "pass" : "fail", fix: local.socket !== null && peer.socket !== null ? "" : loginFixes.join("; ") },
    {
      id: "db-login",
      title: "MariaDB root login",
      values: [local.ok ? `MariaDB ${local.version}` : (local.error ?? "-"), peer.ok ? `MariaDB ${peer.version}` : (peer.error ?? "-")],
      status: loginFixes.length === 0 ? "pass" : "fail",
      fix: loginFixes.join("; "),
    },
  ];
  if (local.ok && peer.ok) {
    const binlogOn = local.logBin === true && peer.logBin === true;
    rows.push({ id: "db-binlog", title: "MariaDB binary log on", values: [local.logBin ? "on" : "off", peer.logBin ? "on" : "off"], status: binlogOn ? "pass" : "fail", fix: binlogOn ? "" : "turn on log_bin (with binlog_format=ROW, log_slave_updates=ON, gtid_strict_mode=ON) in the MariaDB config and restart MariaDB (docs/database.md)" });
    const distinct = local.serverId !== peer.serverId && local.gtidDomainId !== peer.gtidDomainId;
    rows.push({ id: "db-server-id", title: "different server_id, gtid_domain_id", values: [`${local.serverId} / ${local.gtidDomainId}`, `${peer.serverId} / ${peer.gtidDomainId}`], status: distinct ? "pass" : "fail", fix: distinct ? "" : "give each MN its own server_id and gtid_domain_id in the MariaDB config, then restart MariaDB" });
  }
  return rows;
}

/** What the seed overwrites, for the typed confirmation (or, with --yes, the record). */
export function overwriteNotice(probes: DatabaseProbes, names: { local: string; peer: string; peerAddress: string }): string {
  const empty: DatabaseSummary = { schemas: [], tables: 0, approxRows: 0, bytes: 0 };
  return (
    `This install OVERWRITES the MariaDB database of ${names.peer} (${names.peerAddress}, socket ${probes.peer.socket ?? "-"}):\n${describeSummary(probes.peer.summary ?? empty)}` +
    `with a copy of ${names.local}'s (this node, socket ${probes.local.socket ?? "-"}):\n${describeSummary(probes.local.summary ?? empty)}` +
    `Every database of ${names.peer} that ${names.local} does not have is dropped; then both replicate each other.\n`
  );
}
