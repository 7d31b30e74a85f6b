/**
 * Why this node's last dial to its peer did not give a link, in the operator's terms.
 *
 * `mnha status` on a node that cannot reach its peer used to say only "DISCONNECTED (never
 * heard)", while the reason (most often two different shared secrets after a rotation done on
 * one node) was in the log, once per retry. The link keeps the last failed dial (peer-link.ts)
 * and this module turns it into the line status shows and the fix to try. No IO here.
 */

/** How the dial ended. `peer-refused:*` and `refused:*` carry a refuse code of @mnha/protocol. */
export interface DialFailure {
  /** `peer-refused:<refuse code>`, `refused:<refuse code>`, `socket:<errno>`, `connect-timeout`, `closed`. */
  code: string;
  /** What happened, as the link saw it (a refusal from the peer quotes the peer's own words). */
  reason: string;
}

export interface DialFailureReport extends DialFailure {
  msAgo: number;
  /** The likeliest fix, or null when the reason says it all. */
  hint: string | null;
}

export interface DialTarget {
  peerName: string;
  peerAddress: string;
  peerPort: number;
}

export function dialFailureHint(code: string, target: DialTarget): string | null {
  const { peerName, peerAddress, peerPort } = target;
  switch (code) {
    case "peer-refused:auth-failed":
    case "refused:auth-failed":
      return `the two nodes hold different shared secrets: the file auth.secretFile names must hold the same secret on both nodes; copy it from one node to the other, then restart the agent on the node you copied to (systemctl restart mnha)`;
    case "peer-refused:unsupported-version":
    case "refused:unsupported-version":
      return `the two agents share no peer protocol version: upgrade the older agent (mnha upgrade-ha), or see mnha version on each node`;
    case "peer-refused:unknown-peer":
    case "refused:unknown-peer":
      return `the nodes disagree on their names: peers[0].name on each node must be the other node's node.name (mnha show-config on each)`;
    case "socket:ECONNREFUSED":
      return `nothing listens on ${peerAddress}:${peerPort}: is the agent on ${peerName} running (systemctl status mnha on ${peerName}), and is its listen.port ${peerPort}?`;
    case "socket:ECONNRESET":
      return `${peerName} reset the connection: it admits only its configured peer address, so peers[0].address on ${peerName} must be this node's node.address; a firewall that rejects TCP port ${peerPort} does the same`;
    case "socket:EADDRNOTAVAIL":
      return `this node cannot dial from its node.address: it must be an address of this host, on the network that reaches ${peerAddress} (ip -br addr; mnha show-config)`;
    case "socket:EHOSTUNREACH":
    case "socket:ENETUNREACH":
    case "connect-timeout":
      return `${peerAddress} does not answer on TCP port ${peerPort}: check the network between the nodes, a firewall on either node, and node.address (the agent dials from it)`;
    default:
      return null;
  }
}
