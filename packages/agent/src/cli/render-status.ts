/** `mnha status` for people: both nodes side by side, then why a node may not hold the VIP. */
import type { DbNodeStatus, NodeStatus, PeerDuplicateCheck, StatusReport } from "../contracts.js";
import { PAIR_SETTINGS_FIX, describeDifferences } from "../daemon/pair-settings.js";
import { formatDuration } from "../util/format.js";
import { renderTable, terminalSafe, truncate } from "./render-table.js";

type PeerReport = StatusReport["peer"];
type KnownPeer = Extract<PeerReport, { role: unknown }>;

function isKnownPeer(peer: PeerReport): peer is KnownPeer {
  return "role" in peer;
}

const yesNo = (value: boolean): string => (value ? "yes" : "no");
const reachability = (value: boolean): string => (value ? "reachable" : "UNREACHABLE");

export function renderStatus(report: StatusReport): string {
  const { self, peer } = report;
  const known = isKnownPeer(peer) ? peer : null;
  const unknown = "unknown";
  const peerLink = peer.connected
    ? `connected${peer.lastHeardMsAgo === null ? "" : `, heard ${formatDuration(peer.lastHeardMsAgo)} ago`}`
    : `DISCONNECTED${peer.lastHeardMsAgo === null ? " (never heard)" : `, last heard ${formatDuration(peer.lastHeardMsAgo)} ago`}`;
  const peerHeader = `${peer.node} (peer${known && !peer.connected ? ", as last heard" : ""})`;

  const rows: string[][] = [
    ["", `${self.node} (this node)`, peerHeader],
    ["address", self.address, peer.address],
    ...(report.protocol ? [["peer protocol", `offers ${report.protocol.offered.join(",")}; ${report.protocol.negotiated === null ? "no link" : `link v${report.protocol.negotiated}`}`, ""]] : []),
    ["role", self.role, known?.role ?? unknown],
    ["epoch", String(self.epoch), known ? String(known.epoch) : unknown],
    ["owns VIP", yesNo(report.vipOwner === self.node), yesNo(report.vipOwner === peer.node)],
    ["VIP on interface", yesNo(self.vipPresent), known ? yesNo(known.vipPresent) : unknown],
    ["gateway", reachability(self.gatewayReachable) + (report.gateway.rttMs === null ? "" : ` (${report.gateway.rttMs.toFixed(1)} ms)`), known ? reachability(known.gatewayReachable) : unknown],
    ["keepalived", self.keepalived + (self.keepalivedPid === null ? "" : ` (pid ${self.keepalivedPid})`) + (self.keepalivedRestarts > 0 ? `, ${self.keepalivedRestarts} restarts` : ""), known?.keepalived ?? unknown],
    ["eligible", yesNo(self.eligible), known ? yesNo(known.eligible) : unknown],
  ];
  const serviceNames = [...new Set([...self.services.map((s) => s.name), ...(known?.services.map((s) => s.name) ?? [])])];
  for (const name of serviceNames) {
    rows.push([`service ${name}`, serviceCell(self, name), known ? serviceCell(known, name) : unknown]);
  }
  if (report.db) rows.push(...dbRows(report.db.self, report.db.peer, unknown));
  if (report.duplicateCheck || known?.duplicateCheck) {
    // An older peer (peer protocol before v4) does not report its check.
    const peerCell = known ? (known.duplicateCheck ? duplicateCheckCell(known.duplicateCheck) : "not reported (older agent)") : unknown;
    rows.push(["duplicate check", report.duplicateCheck ? duplicateCheckCell(report.duplicateCheck) : unknown, peerCell]);
  }
  if (report.pairSettings) rows.push(["pair settings", pairSettingsCell(report.pairSettings, peer.connected), ""]);
  rows.push(["uptime", formatDuration(self.uptimeMs), ""]);
  if (report.store) {
    const st = report.store;
    const health = st.ok ? `ok, ${(st.sizeBytes / 1_048_576).toFixed(1)} MiB` : `DEGRADED: ${truncate(st.reason ?? "unknown", 60)}`;
    const extra = [st.pending > 0 ? `${st.pending} pending` : "", st.dropped > 0 ? `${st.dropped} dropped` : ""].filter(Boolean).join(", ");
    rows.push(["audit store", extra ? `${health} (${extra})` : health, ""]);
    rows.push(["sync to peer", st.syncLag === null ? "not known yet" : st.syncLag === 0 ? "in step" : `${st.syncLag} records behind`, ""]);
  }
  if (report.dataSync) {
    const ds = report.dataSync;
    const age = ds.lastSuccessAtMs === null ? "never synced" : `last synced ${formatDuration(Math.max(0, Date.now() - ds.lastSuccessAtMs))} ago`;
    rows.push(["data sync", `${ds.running ? "running, " : ""}${age}${ds.lastError ? `; LAST FAILED: ${truncate(ds.lastError, 48)}` : ""}`, ""]);
  }
  if (report.vipOwner === self.node) rows.push(["lease left", formatDuration(self.leaseRemainingMs), ""]);

  const vip = report.vip;
  const lines = [
    // The watchdog's clock, first: the one line that matters when the pair serves nothing.
    ...(report.vipUnansweredMs != null && report.vipUnansweredMs >= 1_000 ? [`VIP unanswered for ${Math.floor(report.vipUnansweredMs / 1000)} s (the watchdog repairs, then gives the role up; see mnha events --type watchdog)`] : []),
    ...opsLines(report),
    ...settingsLines(report),
    ...(report.readOnlyDirs ?? []).map((entry) => `READ-ONLY: ${entry.message}; ${entry.hint}`),
    `VIP ${vip.address}/${vip.prefix} on ${vip.interface}: ${vipHolderText(report)}`,
    // The holder's one guard against a second holder it cannot talk to: say loudly when it is blind.
    ...blindHolderLines(report, known),
    `gateway ${report.gateway.address}: ${reachability(report.gateway.reachable)}`,
    `peer ${peer.node} (${peer.address}): ${peerLink}`,
    ...dialFailureLines(peer),
    ...(report.witness ? [witnessLine(report.witness)] : []),
    `agent ${report.version}`,
  ].map(terminalSafe);
  lines.push("", renderTable(rows));
  const errant = report.db?.self?.errant;
  if (errant) lines.push("", terminalSafe(`ERRANT TRANSACTIONS on ${self.node}: ${errant.description} (found ${errant.foundAt})`), terminalSafe(`  hint: ${errant.hint}`));
  const reasons = [...notEligible(self), ...(known ? notEligible(known) : [])].map(terminalSafe);
  if (reasons.length > 0) lines.push("", "not eligible to hold the VIP:", ...reasons);
  const notTried = [...restoresNotTried(self), ...(known ? restoresNotTried(known) : [])].map(terminalSafe);
  if (notTried.length > 0) lines.push("", "restore not tried (a restart cannot fix the failure):", ...notTried);
  return `${lines.join("\n")}\n`;
}

/**
 * Who holds the VIP. With no link to the peer, "nobody" is only this node's view: when its last
 * claim found the VIP answered, someone holds it (most likely the peer), and the line says so.
 */
function vipHolderText(report: StatusReport): string {
  if (report.vipOwner !== null) return `held by ${report.vipOwner}`;
  const answered = report.vipAnsweredElsewhere;
  if (answered) return `held by a node this one cannot name (no link to ${report.peer.node}; ${answered.detail}, ${formatDuration(answered.agoMs)} ago)`;
  return "held by NOBODY";
}

/** Settings the two nodes must share but do not: right after the operator modes, before the VIP line. */
function settingsLines(report: StatusReport): string[] {
  const differences = report.pairSettings?.differences ?? [];
  if (differences.length === 0) return [];
  const text = describeDifferences(differences, report.peer.node, (value) => truncate(value, 60));
  return [`SETTINGS DIFFER between ${report.self.node} and ${report.peer.node}: ${text} (${PAIR_SETTINGS_FIX})`, ""];
}

function pairSettingsCell(settings: NonNullable<StatusReport["pairSettings"]>, connected: boolean): string {
  if (!settings.compared) return connected ? "not compared (the peer's agent does not send them: older than protocol v5)" : "not compared (no link to the peer)";
  return settings.differences.length === 0 ? "the same on both nodes" : `DIFFER: ${settings.differences.map((d) => d.name).join(", ")}`;
}

/** Why this node cannot reach its peer, under the peer line: the reason first, then the fix to try. */
function dialFailureLines(peer: PeerReport): string[] {
  const failure = peer.connected ? undefined : peer.dialFailure;
  if (!failure) return [];
  // A refusal quotes the peer's own words: shortened, like every other text a peer sends.
  const lines = [`  last dial ${formatDuration(failure.msAgo)} ago: ${truncate(failure.reason, 160)}`];
  if (failure.hint) lines.push(`  hint: ${failure.hint}`);
  return lines;
}

/**
 * A holder whose duplicate-address check cannot run, this node or the peer (as its heartbeat
 * says, while the link is up): it would not notice a second holder, so it comes right under
 * the VIP line.
 */
function blindHolderLines(report: StatusReport, peer: KnownPeer | null): string[] {
  const blind = (node: string, check: PeerDuplicateCheck): string =>
    `DUPLICATE-ADDRESS CHECK NOT RUNNING on ${node}, which holds the VIP: ${check.problem ?? "no reason given"} (a second holder would go unnoticed; the agent keeps the VIP and retries)`;
  const lines: string[] = [];
  if (report.duplicateCheck?.state === "failing") lines.push(blind(report.self.node, report.duplicateCheck));
  if (peer?.connected && peer.duplicateCheck?.state === "failing") lines.push(blind(peer.node, peer.duplicateCheck));
  return lines;
}

/** A node's holder-side duplicate-address check (rule 7 of docs/protocol.md); the peer's has no age of its last check. */
function duplicateCheckCell(check: PeerDuplicateCheck & { lastCheckMsAgo?: number | null }): string {
  switch (check.state) {
    case "disabled":
      return "off (arpGuard.duplicateCheckIntervalMs is 0)";
    case "idle":
      return "idle (runs while holding the VIP)";
    case "running": {
      const age = check.lastCheckMsAgo === undefined ? "" : check.lastCheckMsAgo === null ? ", no check yet" : `, last check ${formatDuration(check.lastCheckMsAgo)} ago`;
      // A problem while running: some of the staggered arpings fail, so the check runs less often.
      return `running${age}${check.problem === null ? "" : `; ${truncate(check.problem, 60)}`}`;
    }
    case "failing":
      return `NOT RUNNING: ${truncate(check.problem ?? "no reason given", 60)}`;
  }
}

/** The managed MariaDB, per node (the peer's as its last heartbeat said). */
function dbRows(self: DbNodeStatus | null, peer: DbNodeStatus | null, unknown: string): string[][] {
  const cell = (db: DbNodeStatus | null, show: (db: DbNodeStatus) => string): string => (db === null ? unknown : db.alive || show === alive ? show(db) : "-");
  const alive = (db: DbNodeStatus): string => (db.alive ? "alive" : `DOWN${db.error ? `: ${truncate(db.error, 48)}` : ""}`) + (db.seedIncomplete ? " (SEED INCOMPLETE)" : "");
  const text = (value: string | null): string => (value === null || value === "" ? "-" : truncate(value, 48));
  const row = (label: string, show: (db: DbNodeStatus) => string): string[] => [label, cell(self, show), cell(peer, show)];
  return [
    row("MariaDB", alive),
    row("read-only", (db) => (db.readOnly === null ? unknown : db.readOnly ? "yes" : "no (writable)")),
    row("Slave_IO_Running", (db) => db.slaveIoRunning ?? unknown),
    row("Slave_SQL_Running", (db) => db.slaveSqlRunning ?? unknown),
    row("seconds behind", (db) => (db.secondsBehindMaster === null ? unknown : String(db.secondsBehindMaster))),
    row("gtid_binlog_pos", (db) => text(db.gtidBinlogPos)),
    row("gtid_current_pos", (db) => text(db.gtidCurrentPos)),
    row("last IO error", (db) => text(db.lastIoError)),
    row("last SQL error", (db) => text(db.lastSqlError)),
    row("semi-sync", (db) => (db.semiSync === null ? unknown : db.semiSync.masterActive ? "on" : "OFF (asynchronous)")),
  ];
}

function serviceCell(node: NodeStatus, name: string): string {
  const service = node.services.find((s) => s.name === name);
  if (!service) return "-";
  const state = service.healthy ? "healthy" : service.critical ? "DOWN" : "down (not critical)";
  const extra: string[] = [];
  if (!service.healthy && service.detail) extra.push(truncate(service.detail, 48));
  if (service.restoreState === "not-tried") extra.push("restore NOT TRIED (see below)");
  else if (service.restoreState && service.restoreState !== "idle") extra.push(`restore ${service.restoreState}${service.restoreAttempts ? ` (${service.restoreAttempts} attempts)` : ""}`);
  return extra.length > 0 ? `${state}: ${extra.join("; ")}` : state;
}

function restoresNotTried(node: NodeStatus): string[] {
  return node.services.flatMap((s) => (s.restoreState === "not-tried" && s.restoreBlockedBy ? [`  ${node.node} ${s.name}: ${s.restoreBlockedBy}`] : []));
}

function notEligible(node: NodeStatus): string[] {
  if (node.eligible) return [];
  return node.reasons.length > 0 ? node.reasons.map((reason) => `  ${node.node}: ${reason}`) : [`  ${node.node}: (no reason given)`];
}

/** Operator modes come first: an operator must never miss that a node is in maintenance or stopped. */
function opsLines(report: StatusReport): string[] {
  if (!report.ops) return [];
  const lines: string[] = [];
  const nodes: [string, typeof report.ops.self | null][] = [
    [report.self.node, report.ops.self],
    [report.peer.node, report.ops.peer],
  ];
  for (const [node, ops] of nodes) {
    if (!ops) continue;
    if (ops.maintenance) lines.push(`MAINTENANCE MODE on ${node} since ${new Date(ops.maintenance.since).toISOString()} by ${ops.maintenance.by}: ${ops.maintenance.reason || "no reason given"} (the agent acts on nothing)`);
    if (ops.stopped) lines.push(`NODE STOPPED: ${node} since ${new Date(ops.stopped.since).toISOString()} by ${ops.stopped.by} (mnha start-node brings it back)`);
  }
  if (lines.length > 0) lines.push("");
  return lines;
}

/** One line for the witness: the link, who holds its grant and for how long, this node's own grant. */
function witnessLine(w: NonNullable<StatusReport["witness"]>): string {
  const link = w.connected ? (w.reachable ? "reachable" : `connected, NOT ANSWERING (${truncate(w.lastError ?? "no answer", 48)})`) : `UNREACHABLE (${truncate(w.linkError ?? w.lastError ?? "not connected", 48)})`;
  const holder = w.holder === null ? "grant held by nobody" : `grant held by ${w.holder} at epoch ${w.holderEpoch} for ${formatDuration(w.holderRemainingMs)} more (as last heard)`;
  const mine = w.grantHeld ? `this node's grant good for ${formatDuration(w.grantRemainingMs)}` : "this node holds no grant";
  return `witness ${w.address}: ${link}; ${holder}; ${mine}`;
}
