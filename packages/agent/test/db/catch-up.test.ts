/** catchUpWithPeer: what start-node waits for, from the two nodes' status (real GTID strings). */
import { describe, expect, it } from "vitest";
import type { DbNodeStatus } from "../../src/contracts.js";
import { catchUpWithPeer } from "../../src/db/catch-up.js";

const node = (over: Partial<DbNodeStatus> = {}): DbNodeStatus => ({
  alive: true,
  error: null,
  readOnly: true,
  slaveIoRunning: "Yes",
  slaveSqlRunning: "Yes",
  secondsBehindMaster: 0,
  lastIoError: null,
  lastSqlError: null,
  gtidBinlogPos: "0-1-7,1-1-120,2-2-45",
  gtidCurrentPos: "0-1-7,1-1-120,2-2-45",
  gtidSlavePos: null,
  semiSync: null,
  broken: null,
  seedIncomplete: false,
  ...over,
});

describe("catching up with the peer", () => {
  it("caught up: replica running, no lag, every transaction of the peer's binlog applied (all domains)", () => {
    expect(catchUpWithPeer(node(), node(), "mn1")).toMatchObject({ caughtUp: true, lagSeconds: 0, transactionsBehind: 0 });
  });

  it("counts the transactions still to apply, over domains", () => {
    const state = catchUpWithPeer(node({ secondsBehindMaster: 4, gtidCurrentPos: "0-1-7,1-1-100,2-2-45" }), node({ gtidBinlogPos: "0-1-9,1-1-120,2-2-45" }), "mn1");
    expect(state).toMatchObject({ caughtUp: false, lagSeconds: 4, transactionsBehind: 22 });
    expect(state.detail).toMatch(/4 s behind, 22 transactions to apply \(here 0-1-7,1-1-100,2-2-45, mn1 0-1-9,1-1-120,2-2-45\)/);
  });

  it("a fresh pair whose servers have binary-logged nothing (empty positions, reported as null) is caught up", () => {
    const fresh = node({ gtidBinlogPos: null, gtidCurrentPos: null });
    expect(catchUpWithPeer(fresh, fresh, "mn1")).toMatchObject({ caughtUp: true, transactionsBehind: 0, detail: "caught up with mn1 (at (empty))" });
    // The peer has written since: its position counts, from nothing here.
    expect(catchUpWithPeer(fresh, node({ gtidBinlogPos: "1-1-3" }), "mn1")).toMatchObject({ caughtUp: false, transactionsBehind: 3 });
    // A peer whose MariaDB is down has no position to wait for.
    expect(catchUpWithPeer(fresh, node({ alive: false, gtidBinlogPos: null }), "mn1").detail).toMatch(/mn1's position is not known yet/);
  });

  it("lag 0 is not enough while the peer's position is not reached (the IO thread has not fetched it yet)", () => {
    expect(catchUpWithPeer(node({ gtidCurrentPos: "0-1-7,1-1-118,2-2-45" }), node(), "mn1")).toMatchObject({ caughtUp: false, transactionsBehind: 2 });
  });

  it("a stopped replica, a dead server, an incomplete seed or an unknown peer position is not caught up, with the reason", () => {
    expect(catchUpWithPeer(node({ broken: "Slave_SQL_Running No" }), node(), "mn1").detail).toMatch(/replication from mn1 is not running: Slave_SQL_Running No/);
    expect(catchUpWithPeer(node({ alive: false, error: "connect ENOENT" }), node(), "mn1").detail).toMatch(/MariaDB is down: connect ENOENT/);
    expect(catchUpWithPeer(node({ seedIncomplete: true }), node(), "mn1").detail).toMatch(/seed is incomplete/);
    expect(catchUpWithPeer(node(), null, "mn1")).toMatchObject({ caughtUp: false, detail: expect.stringMatching(/position is not known/) });
    expect(catchUpWithPeer(null, node(), "mn1").caughtUp).toBe(false);
  });
});
