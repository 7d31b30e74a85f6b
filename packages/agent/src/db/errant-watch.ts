/**
 * Errant transactions on this node while it is a standby: its own GTID domain grew after it
 * went read-only. Found once, the finding is kept in a file in the data dir (an agent restart
 * must not forget it) and makes the node ineligible to take over from a live holder; only a
 * completed `mnha db seed` / `db resync` removes it. Never repaired here.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSync } from "@mnha/shared";
import { formatGtidPosition, ownDomainWritesBeyond, parseGtidPosition } from "./gtid.js";
import type { DatabaseHealth } from "./types.js";

export const ERRANT_MARK_NAME = "db.errant";

export interface ErrantMark {
  /** For the operator: what was found ("3 written in its own domain 2 while ..."). */
  description: string;
  domain: number;
  /** Own-domain GTID when the node went read-only, and the newest one found beyond it. */
  baseline: string;
  latest: string;
  count: number;
  foundAt: string;
}

export function errantMarkPath(dataDir: string): string {
  return join(dataDir, ERRANT_MARK_NAME);
}

export function readErrantMark(dataDir: string): ErrantMark | null {
  try {
    return JSON.parse(readFileSync(errantMarkPath(dataDir), "utf8")) as ErrantMark;
  } catch {
    return null;
  }
}

/** A completed seed/resync makes this node a fresh copy of the peer: the finding no longer holds. */
export function clearErrantMark(dataDir: string): void {
  rmSync(errantMarkPath(dataDir), { force: true });
}

/** A read-only period as the host reports it: the position read when read-only was first confirmed. */
export interface StandbyPeriod {
  id: number;
  /** gtid_binlog_pos read once read-only was confirmed in this period (null: not yet). */
  position: string | null;
  /** No switch under way (a poll taken during one proves nothing). */
  settled: boolean;
}

export class ErrantWriteWatch {
  /** A seed replaced the data: from this period on, the own domain is judged from here. */
  private rebase: { periodId: number; seq: bigint } | null = null;
  private needsRebase = false;
  private hadMark: boolean;

  constructor(
    private readonly dataDir: string,
    private readonly wallNow: () => Date = () => new Date(),
  ) {
    this.hadMark = existsSync(errantMarkPath(dataDir));
  }

  /**
   * One poll. `period` is null while this node may write (holder) or before the first
   * read-only. Returns the standing finding, and whether it is new.
   */
  observe(health: DatabaseHealth, period: StandbyPeriod | null, seedIncomplete: boolean): { mark: ErrantMark | null; found: boolean } {
    let mark = readErrantMark(this.dataDir);
    if (this.hadMark && mark === null) this.needsRebase = true; // removed by a completed seed
    this.hadMark = mark !== null;
    if (seedIncomplete) {
      this.needsRebase = true;
      return { mark, found: false };
    }
    if (mark !== null || period === null || !period.settled || period.position === null || !health.alive || health.gtidDomainId === null || health.gtidBinlogPos === null) return { mark, found: false };
    const ownDomain = health.gtidDomainId;
    let current;
    let baseline;
    try {
      current = parseGtidPosition(health.gtidBinlogPos);
      baseline = parseGtidPosition(period.position);
    } catch {
      return { mark, found: false };
    }
    if (this.needsRebase) {
      this.rebase = { periodId: period.id, seq: current.get(ownDomain)?.seq ?? 0n };
      this.needsRebase = false;
    }
    if (this.rebase !== null && this.rebase.periodId === period.id) {
      const seq = this.rebase.seq;
      const own = baseline.get(ownDomain);
      if (own === undefined || own.seq < seq) baseline = new Map([...baseline, [ownDomain, { domain: ownDomain, serverId: own?.serverId ?? 0, seq }]]);
    }
    const writes = ownDomainWritesBeyond(baseline, current, ownDomain);
    if (writes === null) return { mark, found: false };
    const latest = `${writes.latest.domain}-${writes.latest.serverId}-${writes.latest.seq}`;
    const baselineText = formatGtidPosition(new Map([...baseline].filter(([domain]) => domain === ownDomain))) || `${ownDomain}-?-0`;
    mark = {
      description: `${writes.count} written in its own domain ${ownDomain} while a read-only standby (${baselineText} when it went read-only, now ${latest})`,
      domain: ownDomain,
      baseline: baselineText,
      latest,
      count: Number(writes.count),
      foundAt: this.wallNow().toISOString(),
    };
    writeFileAtomicSync(errantMarkPath(this.dataDir), `${JSON.stringify(mark)}\n`, { mode: 0o600 });
    this.hadMark = true;
    return { mark, found: true };
  }
}
