/**
 * An on-path relay between the two agents' peer link (issue 11, item 1). The relay process
 * (peer-relay.mjs) runs in the client namespace; nftables NAT inside each MN namespace sends
 * the agent's outgoing peer-link connections to it (DNAT) and presents the relay's onward
 * connection as coming from the real peer (SNAT), so the agents' TCP gate admits it — the
 * position of a compromised switch or router between the MNs. Only TCP to the peer port is
 * redirected; VRRP and everything else flow as before.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { CLIENT_ADDRESS, HOSTS, LAB_DIR, PEER_PORT, MN_NODES, peerOf } from "./constants.js";
import { run, runIn, waitFor } from "./exec.js";

const RELAY_SCRIPT = `${LAB_DIR}/peer-relay.mjs`;
const NFT_TABLE_RELAY = "mnha_lab_relay";

export interface RelayEvent {
  event: string;
  at: number;
  [field: string]: unknown;
}

export class PeerRelay {
  readonly events: RelayEvent[] = [];
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        this.events.push(JSON.parse(line) as RelayEvent);
      } catch {
        this.events.push({ event: "unparsed", at: 0, line });
      }
    });
  }

  /** Starts the relay and redirects both agents' peer-link dials through it (new connections only). */
  static async start(): Promise<PeerRelay> {
    const routes = MN_NODES.flatMap((node) => ["--route", `${HOSTS[node].address}=${HOSTS[peerOf(node)].address}:${PEER_PORT}`]);
    const child = spawn("ip", ["netns", "exec", HOSTS.client.namespace, process.execPath, RELAY_SCRIPT, "--listen", CLIENT_ADDRESS, "--port", String(PEER_PORT), ...routes, "--max-ms", "600000"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const relay = new PeerRelay(child);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    await waitFor("the relay to listen", async () => {
      if (child.exitCode !== null) throw new Error(`peer-relay.mjs exited (${child.exitCode}): ${stderr.trim()}`);
      return relay.events.some((e) => e.event === "listening") ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    for (const node of MN_NODES) {
      const peer = HOSTS[peerOf(node)].address;
      const body = [
        `  chain out { type nat hook output priority -100; policy accept; ip daddr ${peer} tcp dport ${PEER_PORT} dnat to ${CLIENT_ADDRESS}:${PEER_PORT}; }`,
        `  chain in { type nat hook input priority 100; policy accept; ip saddr ${CLIENT_ADDRESS} tcp dport ${PEER_PORT} snat to ${peer}; }`,
      ].join("\n");
      const ruleset = `table ip ${NFT_TABLE_RELAY} {}\ndelete table ip ${NFT_TABLE_RELAY}\ntable ip ${NFT_TABLE_RELAY} {\n${body}\n}\n`;
      await run("ip", ["netns", "exec", HOSTS[node].namespace, "nft", "-f", "-"], { input: ruleset });
    }
    return relay;
  }

  command(line: "inject-text" | "inject-sealed" | "stats"): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** The next event after index `since` that matches, within the bound. */
  async next(what: string, since: number, match: (e: RelayEvent) => boolean, timeoutMs = 15_000): Promise<RelayEvent> {
    return waitFor(what, async () => this.events.slice(since).find(match), { timeoutMs, intervalMs: 50, describeLast: () => JSON.stringify(this.events.slice(-5)) });
  }

  /** Removes the redirection and stops the relay (the link then reconnects directly). */
  async stop(): Promise<void> {
    for (const node of MN_NODES) {
      const listed = await runIn(HOSTS[node].namespace, "nft", ["list", "tables", "ip"], { allowFailure: true });
      if (listed.stdout.split("\n").some((l) => l.trim() === `table ip ${NFT_TABLE_RELAY}`)) await runIn(HOSTS[node].namespace, "nft", ["delete", "table", "ip", NFT_TABLE_RELAY]);
    }
    if (this.child.exitCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
      this.child.stdin.end();
      this.child.kill("SIGTERM");
      await exited;
    }
  }
}
