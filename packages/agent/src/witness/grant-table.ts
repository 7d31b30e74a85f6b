/**
 * The witness's one decision, pure (its monotonic clock comes in as `now`): who holds the
 * grant. A grant (node, epoch, expiry) is renewed by its holder's requests; a different node
 * gets it only once it has run out (as Pacemaker's qdevice and Patroni's leader key with a
 * TTL). A released grant is free at once. After a restart the table starts from the last grant
 * persisted and, for one lease, grants to nobody but that holder: the old grant may still be
 * running out on a node that knows nothing of the restart.
 */

/** Bounds on the lease a node may ask for (ms). */
export const WITNESS_LEASE_MIN_MS = 300;
export const WITNESS_LEASE_MAX_MS = 120_000;

/** What the witness keeps on disk: enough to wait the last lease out after a restart. */
export interface PersistedGrant {
  node: string;
  epoch: number;
  leaseMs: number;
}

export interface GrantDecision {
  granted: boolean;
  /** The holder after this request (null: nobody). */
  holder: string | null;
  holderEpoch: number;
  /** How long the holder's grant still runs, by the witness's clock. */
  remainingMs: number;
  /** The holder (or its epoch) changed: persist it. */
  changed: boolean;
}

export interface GrantView {
  holder: string | null;
  epoch: number;
  remainingMs: number;
  /** After a restart: nobody new is granted before this much longer. */
  restartHoldMs: number;
}

export class GrantTable {
  private grant: { node: string; epoch: number; leaseMs: number; expiresAt: number } | null = null;
  /** Last holder known (status), also after its grant ran out. */
  private last: PersistedGrant | null;
  private readonly holdUntil: number;

  constructor(now: number, persisted: PersistedGrant | null) {
    this.last = persisted;
    // The persisted holder's grant may still run for one lease: it alone may renew meanwhile.
    this.holdUntil = persisted ? now + persisted.leaseMs : now;
    if (persisted) this.grant = { ...persisted, expiresAt: now + persisted.leaseMs };
  }

  acquire(now: number, node: string, epoch: number, leaseMs: number): GrantDecision {
    const lease = Math.min(WITNESS_LEASE_MAX_MS, Math.max(WITNESS_LEASE_MIN_MS, Math.round(leaseMs)));
    const current = this.grant && now < this.grant.expiresAt ? this.grant : null;
    if (current && current.node !== node) {
      return { granted: false, holder: current.node, holderEpoch: current.epoch, remainingMs: Math.ceil(current.expiresAt - now), changed: false };
    }
    const changed = current === null || current.epoch !== epoch || this.last?.node !== node;
    // Renewal never shortens a grant the holder may still be counting on (a shorter lease asked).
    const expiresAt = Math.max(now + lease, current?.expiresAt ?? 0);
    this.grant = { node, epoch, leaseMs: Math.max(lease, current?.leaseMs ?? 0), expiresAt };
    this.last = { node, epoch, leaseMs: this.grant.leaseMs };
    return { granted: true, holder: node, holderEpoch: epoch, remainingMs: Math.ceil(expiresAt - now), changed };
  }

  /** The holder gives its grant back (its gate is closed). Returns true when something changed. */
  release(now: number, node: string, epoch: number): boolean {
    // Only the grant it released: a release that crossed a newer request at a higher epoch frees nothing.
    if (!this.grant || this.grant.node !== node || this.grant.epoch !== epoch || now < this.holdUntil) return false;
    this.grant = null;
    return true;
  }

  view(now: number): GrantView {
    const current = this.grant && now < this.grant.expiresAt ? this.grant : null;
    return {
      holder: current?.node ?? null,
      epoch: current?.epoch ?? this.last?.epoch ?? 0,
      remainingMs: current ? Math.ceil(current.expiresAt - now) : 0,
      restartHoldMs: Math.max(0, Math.ceil(this.holdUntil - now)),
    };
  }

  /** What to write to disk after a change (the last grant, or null when none is running). */
  persistable(): PersistedGrant | null {
    return this.grant ? { node: this.grant.node, epoch: this.grant.epoch, leaseMs: this.grant.leaseMs } : null;
  }
}
