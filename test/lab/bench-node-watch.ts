/**
 * The nodes' view of the VIP, polled: which MNs have it on a live eth0 (interface up and the
 * wire connected). Two at once is split brain as the nodes see it. The client's ARP sampler
 * is the sharper check (22 samples/s); this one (4/s) says which node kept the address.
 */
import { BRIDGE_NAMESPACE, HOST_INTERFACE, HOSTS, MN_NODES, VIP_ADDRESS, type MnNode } from "./constants.js";
import { monoNow, run, sleep } from "./exec.js";

export interface NodeSample {
  t: number;
  /** MNs with the VIP on eth0, eth0 up and the wire connected. */
  holders: MnNode[];
}

interface AddressShow {
  operstate?: string;
  flags?: string[];
  addr_info?: { local?: string }[];
}

async function liveHolders(): Promise<MnNode[]> {
  const ports = await run("ip", ["-n", BRIDGE_NAMESPACE, "-j", "link", "show"], { allowFailure: true, timeoutMs: 2_000 });
  let wired: Set<string>;
  try {
    wired = new Set((JSON.parse(ports.stdout) as { ifname?: string; flags?: string[] }[]).filter((l) => l.flags?.includes("UP")).map((l) => l.ifname ?? ""));
  } catch {
    return [];
  }
  const holders: MnNode[] = [];
  for (const node of MN_NODES) {
    if (!wired.has(HOSTS[node].bridgePort)) continue;
    const shown = await run("ip", ["-n", HOSTS[node].namespace, "-j", "-4", "address", "show", "dev", HOST_INTERFACE], { allowFailure: true, timeoutMs: 2_000 });
    try {
      const link = (JSON.parse(shown.stdout) as AddressShow[])[0];
      const up = link?.flags?.includes("UP") === true && link.operstate !== "DOWN";
      if (up && (link?.addr_info ?? []).some((a) => a.local === VIP_ADDRESS)) holders.push(node);
    } catch {
      // the namespace is being torn down: no holder seen
    }
  }
  return holders;
}

export class NodeWatcher {
  private readonly samples: NodeSample[] = [];
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly options: { intervalMs?: number; maxMs: number }) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const interval = this.options.intervalMs ?? 250;
    const deadline = monoNow() + this.options.maxMs;
    const maxRounds = Math.ceil(this.options.maxMs / interval) + 1;
    this.loop = (async () => {
      for (let round = 0; round < maxRounds && this.running && monoNow() < deadline; round++) {
        const started = monoNow();
        this.samples.push({ t: started, holders: await liveHolders() });
        const rest = interval - (monoNow() - started);
        if (rest > 0) await sleep(rest);
      }
    })();
  }

  async stop(): Promise<NodeSample[]> {
    this.running = false;
    if (this.loop) await this.loop;
    this.loop = null;
    return [...this.samples];
  }
}

/** Samples in which two nodes held the VIP on a live interface. */
export function doubleHolders(samples: readonly NodeSample[]): NodeSample[] {
  return samples.filter((s) => s.holders.length >= 2);
}
