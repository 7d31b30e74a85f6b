/** The pure parts of backups: names, retention, the dump scanner, the rsync/ssh argv. */
import { describe, expect, it } from "vitest";
import { DumpScanner } from "../../src/backup/dump-scanner.js";
import { backupFileName, checksumFileName, manifestFileName, parseBackupFileName } from "../../src/backup/naming.js";
import { parseRsyncListing, rsyncCopyArgv, rsyncListArgv, sshRemoveArgv, type RemoteTarget } from "../../src/backup/remote-copy.js";
import { backupsToDelete } from "../../src/backup/retention.js";

describe("backup file names", () => {
  it("carry the node and the UTC second, and parse back", () => {
    const at = new Date("2026-12-01T21:23:40.987Z");
    const name = backupFileName("mn1", at);
    expect(name).toBe("mnha-mn1-20261201T212340Z.sql.gz");
    expect(parseBackupFileName(name)).toEqual({ node: "mn1", takenAt: new Date("2026-12-01T21:23:40Z") });
    expect(manifestFileName(name)).toBe("mnha-mn1-20261201T212340Z.json");
    expect(checksumFileName(name)).toBe("mnha-mn1-20261201T212340Z.sql.gz.sha256");
  });

  it("refuse anything else, including the temporary name of a backup in progress", () => {
    for (const bad of [".mnha-mn1-20261201T212340Z.sql.gz.partial", "mnha-mn1-20261301T212340Z.sql.gz", "mnha-MN1-20261201T212340Z.sql.gz", "backup.sql.gz", "mnha-mn1-20261201T212340Z.json"]) {
      expect(parseBackupFileName(bad), bad).toBeNull();
    }
  });
});

describe("retention", () => {
  const now = new Date("2026-12-10T00:00:00Z");
  const day = (d: number) => ({ name: `b${d}`, takenAt: new Date(now.getTime() - d * 86_400_000) });
  const items = [day(0), day(1), day(2), day(3), day(10), day(40)];

  it("keeps the newest `count` and deletes the rest", () => {
    expect(backupsToDelete(items, { keepCount: 3, keepDays: 0 }, now).map((i) => i.name)).toEqual(["b3", "b10", "b40"]);
  });

  it("deletes those older than `days` even within the count", () => {
    expect(backupsToDelete(items, { keepCount: 100, keepDays: 7 }, now).map((i) => i.name)).toEqual(["b10", "b40"]);
  });

  it("never deletes the newest backup, however old", () => {
    expect(backupsToDelete([day(400), day(500)], { keepCount: 1, keepDays: 1 }, now).map((i) => i.name)).toEqual(["b500"]);
    expect(backupsToDelete([day(400)], { keepCount: 1, keepDays: 1 }, now)).toEqual([]);
  });

  it("orders by time, not by the input order", () => {
    expect(backupsToDelete([...items].reverse(), { keepCount: 2, keepDays: 0 }, now).map((i) => i.name)).toEqual(["b2", "b3", "b10", "b40"]);
  });
});

const SAMPLE_DUMP = [
  "-- MariaDB dump 10.19",
  "-- SET GLOBAL gtid_slave_pos='0-1-5,1-2-17';",
  "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `app` ;",
  "USE `app`;",
  "CREATE TABLE `t` (",
  "  `id` int(11) NOT NULL,",
  "  PRIMARY KEY (`id`)",
  ") ENGINE=InnoDB;",
  "INSERT INTO `t` VALUES (1,'a (b)'),(2,'it\\'s ),( tricky'),(3,'back\\\\'),(4,NULL);",
  "INSERT INTO `t` VALUES (5,'x');",
  "USE `other db`;",
  "INSERT INTO `w``eird` VALUES (1,0x28),(2,'line\\nbreak');",
  "INSERT INTO `rows_per_line` VALUES",
  "(1,'a;b'),",
  "(2,'(c)');",
  "-- Dump completed on 2026-12-01 21:23:41",
  "",
].join("\n");

describe("the dump scanner", () => {
  it("counts rows per table outside string literals and finds the GTID and the trailer", () => {
    const scanner = new DumpScanner();
    scanner.push(Buffer.from(SAMPLE_DUMP));
    const summary = scanner.summary();
    expect(Object.fromEntries(summary.rows)).toEqual({ "app.t": 5, "other db.w`eird": 2, "other db.rows_per_line": 2 });
    expect(summary.gtid).toBe("0-1-5,1-2-17");
    expect(summary.lastLine).toBe("-- Dump completed on 2026-12-01 21:23:41");
    expect(summary.sqlBytes).toBe(Buffer.byteLength(SAMPLE_DUMP));
  });

  it("gives the same result whatever the chunk boundaries", () => {
    const bytes = Buffer.from(SAMPLE_DUMP);
    for (const size of [1, 2, 3, 7, 64]) {
      const scanner = new DumpScanner();
      for (let i = 0; i < bytes.length; i += size) scanner.push(bytes.subarray(i, i + size));
      const summary = scanner.summary();
      expect(Object.fromEntries(summary.rows), `chunk ${size}`).toEqual({ "app.t": 5, "other db.w`eird": 2, "other db.rows_per_line": 2 });
      expect(summary.gtid).toBe("0-1-5,1-2-17");
    }
  });

  it("sees a dump cut short: its last line is not the trailer", () => {
    const scanner = new DumpScanner();
    scanner.push(Buffer.from(SAMPLE_DUMP.slice(0, SAMPLE_DUMP.indexOf("(5,"))));
    const summary = scanner.summary();
    expect(summary.lastLine.startsWith("-- Dump completed")).toBe(false);
    expect(summary.rows.get("app.t")).toBe(4);
  });
});

describe("remote copy argv", () => {
  const target: RemoteTarget = { host: "10.0.0.9", user: "backup", port: 2222, dir: "/srv/mnha-backups", keyFile: "/etc/mnha/backup_ed25519", knownHostsFile: "/etc/mnha/backup_known_hosts", keep: 5 };

  it("copies with strict host keys, key auth only and no shell", () => {
    const argv = rsyncCopyArgv(target, ["/var/lib/mnha/backups/a.sql.gz"]);
    const e = argv[argv.indexOf("-e") + 1] ?? "";
    expect(e).toBe("ssh -i /etc/mnha/backup_ed25519 -p 2222 -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o ConnectTimeout=10 -o UserKnownHostsFile=/etc/mnha/backup_known_hosts");
    expect(argv.slice(-3)).toEqual(["--", "/var/lib/mnha/backups/a.sql.gz", "backup@10.0.0.9:/srv/mnha-backups/"]);
    expect(rsyncListArgv(target).slice(-2)).toEqual(["--", "backup@10.0.0.9:/srv/mnha-backups/"]);
  });

  it("refuses paths rsync would split or a shell would read", () => {
    expect(() => rsyncCopyArgv({ ...target, keyFile: "/etc/my key" }, [])).toThrow(/keyFile/);
    expect(() => rsyncCopyArgv({ ...target, dir: "/srv/$(reboot)" }, [])).toThrow(/dir/);
  });

  it("removes remote files with one quoted rm", () => {
    const argv = sshRemoveArgv(target, ["mnha-mn1-20261201T000000Z.sql.gz"]);
    expect(argv.slice(-3)).toEqual(["--", "backup@10.0.0.9", "rm -f -- /srv/mnha-backups/mnha-mn1-20261201T000000Z.sql.gz"]);
  });

  it("reads backup names from rsync --list-only", () => {
    const listing = [
      "drwx------          4,096 2026/12/01 21:00:00 .",
      "-rw-------          1,234 2026/12/01 21:00:00 mnha-mn1-20261201T210000Z.sql.gz",
      "-rw-------             97 2026/12/01 21:00:00 mnha-mn1-20261201T210000Z.sql.gz.sha256",
      "-rw-------            700 2026/12/01 21:00:00 mnha-mn1-20261201T210000Z.json",
      "-rw-------          1,250 2026/12/02 21:00:00 mnha-mn2-20261202T210000Z.sql.gz",
    ].join("\n");
    expect(parseRsyncListing(listing)).toEqual(["mnha-mn1-20261201T210000Z.sql.gz", "mnha-mn2-20261202T210000Z.sql.gz"]);
  });
});
