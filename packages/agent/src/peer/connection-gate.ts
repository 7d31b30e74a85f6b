/**
 * Who may open a TCP connection to the peer-link port. Decided on the socket's source address
 * alone, at the `connection` event, before any HTTP parsing, WebSocket upgrade, handshake slot
 * or event: a stranger costs one accept and one reset. The configured peer address is the only
 * source admitted, and even it only up to a few connections at a time.
 */
import { isIPv4 } from "node:net";

export type GateRefusal = "stranger-address" | "source-limit" | "connection-limit";

export type GateVerdict = { ok: true; release: () => void } | { ok: false; code: GateRefusal; reason: string };

export interface ConnectionGateOptions {
  /** Source addresses admitted (the configured peer's). */
  allowed: readonly string[];
  /** Open connections from one source at most (the peer needs one, two while a dial races a stale link). */
  perSourceMax: number;
  /** Open connections in total at most. */
  globalMax: number;
}

export class ConnectionGate {
  private readonly allowed: ReadonlySet<string>;
  private readonly perSource = new Map<string, number>();
  private open = 0;

  constructor(private readonly options: ConnectionGateOptions) {
    this.allowed = new Set(options.allowed.map(normalizeAddress));
  }

  /** Admit or refuse a connection from `remoteAddress`; an admitted one must be released when it closes. */
  admit(remoteAddress: string | undefined): GateVerdict {
    const source = normalizeAddress(remoteAddress ?? "");
    if (!this.allowed.has(source)) return { ok: false, code: "stranger-address", reason: `${source || "unknown address"} is not the configured peer address` };
    if (this.open >= this.options.globalMax) return { ok: false, code: "connection-limit", reason: `${this.open} peer-port connections open (limit ${this.options.globalMax})` };
    const fromSource = this.perSource.get(source) ?? 0;
    if (fromSource >= this.options.perSourceMax) return { ok: false, code: "source-limit", reason: `${fromSource} connections open from ${source} (limit ${this.options.perSourceMax})` };
    this.open++;
    this.perSource.set(source, fromSource + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.open--;
        const left = (this.perSource.get(source) ?? 1) - 1;
        if (left <= 0) this.perSource.delete(source);
        else this.perSource.set(source, left);
      },
    };
  }
}

/** "::ffff:10.0.0.1" (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(.+)$/i.exec(address);
  return mapped?.[1] && isIPv4(mapped[1]) ? mapped[1] : address;
}
