/**
 * MariaDB GTID positions: "domain-server-seq" entries, one per replication domain, joined by
 * commas. Each MN writes in its own domain (gtid_domain_id), so in master–master the two
 * streams never interleave; comparing positions per domain tells lag from divergence.
 * Pure functions: no IO.
 */
import { MnhaError } from "@mnha/shared";

export interface Gtid {
  domain: number;
  serverId: number;
  seq: bigint;
}

/** One GTID per domain, as in gtid_current_pos, gtid_slave_pos or Gtid_IO_Pos. */
export type GtidPosition = ReadonlyMap<number, Gtid>;

const GTID_PATTERN = /^(\d+)-(\d+)-(\d+)$/;

export function parseGtidPosition(text: string | null | undefined): GtidPosition {
  const position = new Map<number, Gtid>();
  for (const raw of (text ?? "").split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const match = GTID_PATTERN.exec(entry);
    if (!match) throw new MnhaError("DB_REPLICATION", `not a GTID position: ${JSON.stringify(text)}`, { hint: "a GTID position is a list of domain-server-sequence entries such as 1-1-42,2-2-17" });
    const gtid = { domain: Number(match[1]), serverId: Number(match[2]), seq: BigInt(match[3] as string) };
    const seen = position.get(gtid.domain);
    if (seen === undefined || gtid.seq > seen.seq) position.set(gtid.domain, gtid);
  }
  return position;
}

export function formatGtidPosition(position: GtidPosition): string {
  return [...position.values()]
    .sort((a, b) => a.domain - b.domain)
    .map((g) => `${g.domain}-${g.serverId}-${g.seq}`)
    .join(",");
}

/** The sequence number a position has reached in a domain (0 when it has none there). */
export function seqIn(position: GtidPosition, domain: number): bigint {
  return position.get(domain)?.seq ?? 0n;
}

/** Whether `position` includes every transaction of `target` (what MASTER_GTID_WAIT waits for). */
export function gtidReached(position: GtidPosition, target: GtidPosition): boolean {
  for (const gtid of target.values()) if (seqIn(position, gtid.domain) < gtid.seq) return false;
  return true;
}

/** How many transactions `position` lacks of `target`, summed over domains. */
export function transactionsBehind(position: GtidPosition, target: GtidPosition): bigint {
  let behind = 0n;
  for (const gtid of target.values()) {
    const have = seqIn(position, gtid.domain);
    if (have < gtid.seq) behind += gtid.seq - have;
  }
  return behind;
}

/** One node's view, as errant-transaction detection needs it. */
export interface GtidView {
  node: string;
  /** The node's gtid_domain_id: the domain its own writes go to. */
  domainId: number;
  /** gtid_current_pos: everything it wrote or applied. */
  current: GtidPosition;
  /** Whether its replica (from the other node) has read and applied all it was sent. */
  replicaCaughtUp: boolean;
}

export interface GtidDivergence {
  /** The node holding transactions the other lacks. */
  node: string;
  /** The node lacking them. */
  missingOn: string;
  domain: number;
  has: string;
  otherHas: string;
  /**
   * foreign-domain: the node has transactions in the other node's own domain beyond what
   * that node itself wrote (they cannot have come from it: errant, always).
   * unreplicated: the node's own transactions that the other has not seen although its
   * replica is caught up (lost on the way, or skipped: errant).
   * other-domain: a domain neither node owns (e.g. 0, writes from before mnha) differs.
   */
  kind: "foreign-domain" | "unreplicated" | "other-domain";
}

/**
 * Errant transactions between the two nodes: divergence that replication will not repair by
 * itself. Plain lag (the replica still reading or applying) is not divergence.
 */
export function findGtidDivergence(a: GtidView, b: GtidView): GtidDivergence[] {
  const found: GtidDivergence[] = [];
  const describe = (holder: GtidView, other: GtidView, domain: number, kind: GtidDivergence["kind"]): GtidDivergence => ({
    node: holder.node,
    missingOn: other.node,
    domain,
    has: gtidText(holder.current.get(domain)),
    otherHas: gtidText(other.current.get(domain)),
    kind,
  });
  const domains = new Set<number>([...a.current.keys(), ...b.current.keys()]);
  for (const domain of [...domains].sort((x, y) => x - y)) {
    const seqA = seqIn(a.current, domain);
    const seqB = seqIn(b.current, domain);
    if (seqA === seqB) continue;
    const [ahead, behind] = seqA > seqB ? [a, b] : [b, a];
    if (domain === behind.domainId) found.push(describe(ahead, behind, domain, "foreign-domain"));
    else if (domain === ahead.domainId) {
      if (behind.replicaCaughtUp) found.push(describe(ahead, behind, domain, "unreplicated"));
    } else if (behind.replicaCaughtUp) found.push(describe(ahead, behind, domain, "other-domain"));
  }
  return found;
}

function gtidText(gtid: Gtid | undefined): string {
  return gtid === undefined ? "(none)" : `${gtid.domain}-${gtid.serverId}-${gtid.seq}`;
}

export function describeDivergence(d: GtidDivergence): string {
  switch (d.kind) {
    case "foreign-domain":
      return `${d.node} has transactions in ${d.missingOn}'s own domain ${d.domain} that ${d.missingOn} never wrote (${d.node}: ${d.has}, ${d.missingOn}: ${d.otherHas})`;
    case "unreplicated":
      return `${d.node}'s transactions in domain ${d.domain} are missing on ${d.missingOn} although its replica is caught up (${d.node}: ${d.has}, ${d.missingOn}: ${d.otherHas})`;
    case "other-domain":
      return `domain ${d.domain} differs: ${d.node} has ${d.has}, ${d.missingOn} has ${d.otherHas}`;
  }
}

/** Transactions a node wrote in its own domain beyond `baseline` (what it had when it last went read-only). */
export interface OwnDomainWrites {
  domain: number;
  /** The own-domain sequence number at the baseline. */
  baselineSeq: bigint;
  /** The newest own-domain GTID now. */
  latest: Gtid;
  count: bigint;
}

/**
 * A standby (read-only, not holding the VIP) must not write: its own domain grows only while
 * it holds the VIP. Anything in its own domain beyond the position it had when it went
 * read-only was written behind mnha's back (an account with READ ONLY ADMIN, read_only turned
 * off by hand): errant transactions, whether or not they have replicated to the peer.
 */
export function ownDomainWritesBeyond(baseline: GtidPosition, current: GtidPosition, ownDomain: number): OwnDomainWrites | null {
  const baselineSeq = seqIn(baseline, ownDomain);
  const latest = current.get(ownDomain);
  if (latest === undefined || latest.seq <= baselineSeq) return null;
  return { domain: ownDomain, baselineSeq, latest, count: latest.seq - baselineSeq };
}
