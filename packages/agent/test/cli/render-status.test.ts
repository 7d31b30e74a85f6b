/**
 * `mnha status` for people: the holder's duplicate-address check gets its own row, and a
 * holder whose check cannot run is said above the table, where an operator looks first.
 */
import { describe, expect, it } from "vitest";
import { renderStatus } from "../../src/cli/render-status.js";
import type { DuplicateCheckStatus, PeerDuplicateCheck, StatusReport } from "../../src/contracts.js";
import { sampleStatus } from "../control/fake-control.js";

function rendered(duplicateCheck: DuplicateCheckStatus | undefined, peerCheck?: PeerDuplicateCheck, change?: (report: StatusReport) => void): { text: string; row: string | undefined } {
  const report = sampleStatus();
  if (duplicateCheck) report.duplicateCheck = duplicateCheck;
  if (peerCheck && "role" in report.peer) report.peer.duplicateCheck = peerCheck;
  change?.(report);
  const text = renderStatus(report);
  return { text, row: text.split("\n").find((line) => line.trimStart().startsWith("duplicate check")) };
}

describe("status: the duplicate-address check", () => {
  it("one row per state: running with the age of its last check, idle on a standby, off when configured off", () => {
    expect(rendered({ state: "running", problem: null, lastCheckMsAgo: 420 }).row).toMatch(/duplicate check\s+running, last check 420 ms ago\s+not reported \(older agent\)\s*$/);
    expect(rendered({ state: "running", problem: null, lastCheckMsAgo: null }).row).toMatch(/running, no check yet/);
    expect(rendered({ state: "idle", problem: null, lastCheckMsAgo: null }).row).toMatch(/idle \(runs while holding the VIP\)/);
    expect(rendered({ state: "disabled", problem: null, lastCheckMsAgo: null }).row).toMatch(/off \(arpGuard\.duplicateCheckIntervalMs is 0\)/);
    // A weakened check is still running, and says what is missing.
    expect(rendered({ state: "running", problem: "1 of 2 arpings failing (checks less often): arping exited (code 2)", lastCheckMsAgo: 900 }).row).toMatch(/running, last check 900 ms ago; 1 of 2 arpings failing/);
  });

  it("a holder whose check cannot run: NOT RUNNING in its row and a line above the table naming the problem", () => {
    const { text, row } = rendered({ state: "failing", problem: "own MAC on br_eth0 unknown (ENOENT), 12 tries", lastCheckMsAgo: null });
    expect(row).toMatch(/NOT RUNNING: own MAC on br_eth0 unknown \(ENOENT\), 12 tries/);
    const lines = text.split("\n");
    const warning = lines.findIndex((line) => line.startsWith("DUPLICATE-ADDRESS CHECK NOT RUNNING on mn1, which holds the VIP: own MAC on br_eth0 unknown (ENOENT), 12 tries"));
    expect(warning, "the warning line").toBeGreaterThan(0);
    expect(lines[warning - 1], "right under the VIP line").toMatch(/^VIP 10\.0\.0\.100\/24/);
    expect(lines[warning]).toMatch(/a second holder would go unnoticed; the agent keeps the VIP and retries/);
  });

  it("no row and no warning from an agent that does not report the check (older agents)", () => {
    const { text, row } = rendered(undefined);
    expect(row).toBeUndefined();
    expect(text).not.toMatch(/DUPLICATE-ADDRESS/);
  });

  it("the peer's check, as its heartbeat says: in the peer's column, without the age of its last check", () => {
    const idle = { state: "idle", problem: null, lastCheckMsAgo: null } as const;
    expect(rendered(idle, { state: "running", problem: null }).row).toMatch(/idle \(runs while holding the VIP\)\s+\|?\s*running\s*\|?\s*$/);
    expect(rendered(idle, { state: "running", problem: "1 of 2 arpings failing (checks less often): exited" }).row).toMatch(/\s+running; 1 of 2 arpings failing/);
    // An older peer (peer protocol before v4) does not send it: said so, not guessed.
    expect(rendered(idle).row).toMatch(/idle \(runs while holding the VIP\)\s+\|?\s*not reported \(older agent\)/);
    // Only the peer reports it (this node's agent is older than its heartbeat): the row still shows.
    expect(rendered(undefined, { state: "disabled", problem: null }).row).toMatch(/duplicate check\s+\|?\s*unknown\s+\|?\s*off \(arpGuard/);
  });

  it("a peer holding the VIP whose check cannot run gets the same line under the VIP line, while the link is up; not from a stale heartbeat", () => {
    const holderIsPeer = (report: StatusReport): void => {
      report.vipOwner = "mn2";
    };
    const idle = { state: "idle", problem: null, lastCheckMsAgo: null } as const;
    const failing = { state: "failing", problem: "/usr/bin/arping exited (code 2): arping: socket: Operation not permitted" } as const;
    const { text, row } = rendered(idle, failing, holderIsPeer);
    expect(row).toMatch(/idle \(runs while holding the VIP\)\s+\|?\s*NOT RUNNING: \/usr\/bin\/arping exited \(code 2\)/);
    const lines = text.split("\n");
    const warning = lines.findIndex((line) => line.startsWith("DUPLICATE-ADDRESS CHECK NOT RUNNING on mn2, which holds the VIP: /usr/bin/arping exited (code 2): arping: socket: Operation not permitted ("));
    expect(warning, "the warning line").toBeGreaterThan(0);
    expect(lines[warning - 1], "right under the VIP line").toMatch(/^VIP 10\.0\.0\.100\/24 on \S+: held by mn2/);
    expect(text.match(/DUPLICATE-ADDRESS/g), "one line, for the peer only").toHaveLength(1);

    const stale = rendered(idle, failing, (report) => {
      holderIsPeer(report);
      report.peer.connected = false;
    });
    expect(stale.text, "a heartbeat from before the link went down is not news").not.toMatch(/DUPLICATE-ADDRESS/);
    expect(stale.row, "the row keeps it, under the peer's 'as last heard' column").toMatch(/NOT RUNNING: /);
  });
});

describe("status: why the peer link is down", () => {
  const refused = { code: "peer-refused:auth-failed", reason: "refused by the peer (auth-failed): peer failed authentication: the dialer's proof does not match the shared secret", msAgo: 1_200, hint: "the two nodes hold different shared secrets: copy it" };

  it("under the peer line: the last dial's failure and the fix to try", () => {
    const report = sampleStatus();
    report.peer.connected = false;
    report.peer.lastHeardMsAgo = null;
    report.peer.dialFailure = refused;
    const lines = renderStatus(report).split("\n");
    const peerLine = lines.findIndex((line) => line.startsWith("peer mn2 (10.0.0.12): DISCONNECTED (never heard)"));
    expect(peerLine, "the peer line").toBeGreaterThan(0);
    expect(lines[peerLine + 1]).toBe("  last dial 1.2 s ago: refused by the peer (auth-failed): peer failed authentication: the dialer's proof does not match the shared secret");
    expect(lines[peerLine + 2]).toBe("  hint: the two nodes hold different shared secrets: copy it");
  });

  it("no hint line when there is none; a long reason from the peer is shortened; nothing while the link is up", () => {
    const report = sampleStatus();
    report.peer.connected = false;
    report.peer.dialFailure = { code: "closed", reason: `refused by the peer (protocol): ${"x".repeat(400)}`, msAgo: 50, hint: null };
    const text = renderStatus(report);
    const line = text.split("\n").find((l) => l.startsWith("  last dial 50 ms ago: refused by the peer (protocol): xxx"));
    expect(line?.length).toBeLessThan(200);
    expect(text).not.toMatch(/^ {2}hint:/m);

    const up = sampleStatus();
    up.peer.dialFailure = refused;
    expect(up.peer.connected).toBe(true);
    expect(renderStatus(up)).not.toContain("last dial");
  });
});

describe("status: the settings both nodes must share", () => {
  it("a difference comes first, before the VIP line, naming both values; the row says which", () => {
    const report = sampleStatus();
    report.pairSettings = { compared: true, differences: [{ name: "vip", here: "10.0.0.100/24", peer: "10.0.0.100/25" }, { name: "timings.leaseMs", here: "600", peer: "900" }] };
    const lines = renderStatus(report).split("\n");
    expect(lines[0]).toBe("SETTINGS DIFFER between mn1 and mn2: vip 10.0.0.100/24 here, 10.0.0.100/25 on mn2; timings.leaseMs 600 here, 900 on mn2 (the two nodes must agree: fix the config file of the wrong node, then restart its agent)");
    expect(lines.find((l) => l.trimStart().startsWith("pair settings"))).toMatch(/pair settings\s+DIFFER: vip, timings\.leaseMs/);
  });

  it("the same: one quiet row; not compared: says why (an older peer, or no link)", () => {
    const report = sampleStatus();
    report.pairSettings = { compared: true, differences: [] };
    const text = renderStatus(report);
    expect(text).not.toContain("SETTINGS DIFFER");
    expect(text).toMatch(/pair settings\s+the same on both nodes/);
    report.pairSettings = { compared: false, differences: [] };
    expect(renderStatus(report)).toMatch(/pair settings\s+not compared \(the peer's agent does not send them: older than protocol v5\)/);
    report.peer.connected = false;
    expect(renderStatus(report)).toMatch(/pair settings\s+not compared \(no link to the peer\)/);
    // From an agent that does not report them: no row.
    delete report.pairSettings;
    expect(renderStatus(report)).not.toContain("pair settings");
  });
});

describe("status: a restore a restart cannot fix", () => {
  it("the service's cell says NOT TRIED, and a section under the table names the reason and the fix; nothing of it otherwise", () => {
    const report = sampleStatus();
    const reason = "MariaDB answers but refuses the check's user root, and restarting it cannot change that: put root's password in /etc/mnha/db-root";
    report.self.services = [
      { name: "mn", healthy: true, critical: true },
      { name: "db", healthy: false, critical: true, detail: "MariaDB on local (socket /run/mysqld/mysqld.sock) refused the login of root: wrong password", restoreAttempts: 0, restoreState: "not-tried", restoreBlockedBy: reason },
    ];
    const lines = renderStatus(report).split("\n");
    expect(lines.find((l) => l.trimStart().startsWith("service db"))).toMatch(/service db\s+DOWN: MariaDB on local .*; restore NOT TRIED \(see below\)/);
    const heading = lines.indexOf("restore not tried (a restart cannot fix the failure):");
    expect(heading, "the section").toBeGreaterThan(0);
    expect(lines[heading + 1]).toBe(`  mn1 db: ${reason}`);
    expect(renderStatus(sampleStatus())).not.toContain("restore not tried");
  });
});
