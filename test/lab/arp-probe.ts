/** One ARP request for an address from a lab host: every distinct MAC that answered. */
import { HOST_INTERFACE, HOSTS, VIP_ADDRESS, type HostName } from "./constants.js";
import { run } from "./exec.js";

export function parseArpingMacs(output: string): string[] {
  return [...new Set([...output.matchAll(/reply from \S+ \[([0-9A-Fa-f:]{17})\]/g)].map((m) => (m[1] as string).toLowerCase()))];
}

/**
 * `arping -c 2 -w 1` waits for two replies (so a second MAC is seen); the run is cut with
 * SIGINT after windowMs, and arping prints what it got before exiting.
 */
export async function arpProbe(options: { from?: HostName; address?: string; windowMs?: number; arping?: string } = {}): Promise<string[]> {
  const from = HOSTS[options.from ?? "client"];
  const result = await run(
    "ip",
    ["netns", "exec", from.namespace, options.arping ?? "arping", "-I", HOST_INTERFACE, "-c", "2", "-w", "1", options.address ?? VIP_ADDRESS],
    { allowFailure: true, timeoutMs: options.windowMs ?? 150, killSignal: "SIGINT" },
  );
  return parseArpingMacs(result.stdout);
}
