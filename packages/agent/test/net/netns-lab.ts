import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Runs a command (argv, no shell); throws with its stderr on failure. */
export async function run(argv: string[], timeoutMs = 10_000): Promise<string> {
  const [file, ...args] = argv;
  try {
    const { stdout } = await execFileAsync(file as string, args, { timeout: timeoutMs, encoding: "utf8" });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`${argv.join(" ")} failed: ${failure.stderr?.trim() || failure.message}`);
  }
}

/**
 * Throwaway network namespaces for one test file. Every name starts with `mnha-ut-`; the
 * namespaces (and the interfaces inside them) are deleted by cleanup(), which the tests
 * call in afterAll so that a failing test leaves nothing behind. Traffic stays inside.
 */
export class NetnsLab {
  private readonly namespaces: string[] = [];

  /** Creates namespace `mnha-ut-<suffix>` (deleting a leftover of the same name first) with lo up. */
  async namespace(suffix: string): Promise<string> {
    const name = `mnha-ut-${suffix}`;
    if (!/^mnha-ut-[a-z0-9-]{1,20}$/.test(name)) throw new Error(`bad namespace name ${name}`);
    await run(["ip", "netns", "del", name]).catch(() => undefined);
    await run(["ip", "netns", "add", name]);
    this.namespaces.push(name);
    await run(["ip", "-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /**
   * A lone interface holding `cidr` (e.g. 10.251.0.2/24) in `ns`: one end of a veth pair
   * whose other end (`<iface>p`) stays in the same namespace, up and unaddressed. (The
   * dummy link type needs a kernel module this machine may not have.)
   */
  async stub(ns: string, iface: string, cidr: string): Promise<void> {
    await this.veth({ ns, iface, cidr }, { ns, iface: `${iface}p` });
  }

  /** A veth pair joining two namespaces, each end up with its address (no DAD delay: IPv4 only). */
  async veth(a: { ns: string; iface: string; cidr?: string }, b: { ns: string; iface: string; cidr?: string }): Promise<void> {
    await run(["ip", "link", "add", a.iface, "netns", a.ns, "type", "veth", "peer", "name", b.iface, "netns", b.ns]);
    for (const end of [a, b]) {
      if (end.cidr) await run(["ip", "-n", end.ns, "addr", "add", end.cidr, "dev", end.iface]);
      await run(["ip", "-n", end.ns, "link", "set", end.iface, "up"]);
    }
  }

  /** A bridge inside `ns` (the "switch"). */
  async bridge(ns: string, name: string): Promise<void> {
    await run(["ip", "-n", ns, "link", "add", name, "type", "bridge"]);
    await run(["ip", "-n", ns, "link", "set", name, "up"]);
  }

  /** Connects host namespace `host` to bridge `bridge` in `switchNs` through a veth pair. */
  async plug(host: { ns: string; iface: string; cidr: string }, switchNs: string, bridge: string, port: string): Promise<void> {
    await this.veth(host, { ns: switchNs, iface: port });
    await run(["ip", "-n", switchNs, "link", "set", port, "master", bridge]);
  }

  async addAddress(ns: string, iface: string, cidr: string): Promise<void> {
    await run(["ip", "-n", ns, "addr", "add", cidr, "dev", iface]);
  }

  async mac(ns: string, iface: string): Promise<string> {
    const out = await run(["ip", "-n", ns, "-o", "link", "show", "dev", iface]);
    const match = /link\/ether ([0-9a-f:]{17})/.exec(out);
    if (!match?.[1]) throw new Error(`no MAC in: ${out}`);
    return match[1];
  }

  async hasAddress(ns: string, iface: string, ip: string): Promise<boolean> {
    const out = await run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", iface]);
    return out.includes(` ${ip}/`);
  }

  async cleanup(): Promise<void> {
    for (const ns of this.namespaces.splice(0).reverse()) {
      await run(["ip", "netns", "del", ns]).catch(() => undefined);
    }
  }
}

/** Polls `probe` every `everyMs` until it returns true; resolves with the elapsed ms, or null on timeout. */
export async function waitUntil(probe: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 10): Promise<number | null> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await probe()) return Math.round(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return (await probe()) ? Math.round(performance.now() - started) : null;
}
