/**
 * The server settings master–master GTID replication needs, checked at start. Each missing
 * one is named with the my.cnf line that fixes it. Pure: the adapter reads the variables.
 */
import { MnhaError } from "@mnha/shared";

export interface ServerSettings {
  version: string;
  logBin: boolean;
  serverId: number;
  gtidDomainId: number;
  gtidStrictMode: boolean;
  logSlaveUpdates: boolean;
  binlogFormat: string;
}

export interface SettingProblem {
  setting: string;
  found: string;
  /** The line to add to the [mariadbd] section of my.cnf (then restart MariaDB). */
  myCnfLine: string;
}

/** What is wrong with one server's settings on its own (empty: nothing). */
export function settingProblems(s: ServerSettings): SettingProblem[] {
  const problems: SettingProblem[] = [];
  if (!s.logBin) problems.push({ setting: "log_bin", found: "OFF", myCnfLine: "log_bin = mariadb-bin" });
  if (s.serverId === 0) problems.push({ setting: "server_id", found: "0", myCnfLine: "server_id = 1   (2 on the other node)" });
  if (!s.gtidStrictMode) problems.push({ setting: "gtid_strict_mode", found: "OFF", myCnfLine: "gtid_strict_mode = 1" });
  if (!s.logSlaveUpdates) problems.push({ setting: "log_slave_updates", found: "OFF", myCnfLine: "log_slave_updates = 1" });
  if (s.binlogFormat.toUpperCase() !== "ROW") problems.push({ setting: "binlog_format", found: s.binlogFormat, myCnfLine: "binlog_format = ROW" });
  return problems;
}

/** What is wrong with the pair: the two servers must differ in server_id and gtid_domain_id. */
export function pairProblems(self: ServerSettings, peer: ServerSettings): SettingProblem[] {
  const problems: SettingProblem[] = [];
  if (self.serverId === peer.serverId) problems.push({ setting: "server_id", found: `${self.serverId} on both nodes`, myCnfLine: `server_id = ${self.serverId === 1 ? 2 : 1}   (on one of the nodes; each needs its own)` });
  if (self.gtidDomainId === peer.gtidDomainId)
    problems.push({ setting: "gtid_domain_id", found: `${self.gtidDomainId} on both nodes`, myCnfLine: `gtid_domain_id = ${self.gtidDomainId === 1 ? 2 : 1}   (on one of the nodes; each writes in its own domain)` });
  return problems;
}

export function settingsError(where: string, problems: SettingProblem[]): MnhaError {
  const lines = problems.map((p) => `  - ${p.setting} is ${p.found}: add \`${p.myCnfLine}\``);
  return new MnhaError("DB_SETTINGS", `MariaDB on ${where} is not set up for mnha's replication:\n${lines.join("\n")}`, {
    hint: "add the lines above to the [mariadbd] section of my.cnf (e.g. /etc/mysql/mariadb.conf.d/50-server.cnf) and restart MariaDB; nothing was changed",
    fields: { where, problems },
  });
}

/** Throws a DB_SETTINGS error naming every missing setting. */
export function assertSettings(where: string, settings: ServerSettings): void {
  const problems = settingProblems(settings);
  if (problems.length > 0) throw settingsError(where, problems);
}
