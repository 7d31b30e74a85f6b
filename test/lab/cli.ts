/**
 * `pnpm lab <verb>`: drive the namespace lab by hand. Run as root. `down` loads nothing but
 * Node built-ins, so it works even when the workspace is not built or the lab crashed.
 */
import { parseArgs } from "node:util";
import { LAB_PREFIX, MN_NODES, STANDIN_SERVICES, isMnNode, type MnNode, type ServiceName } from "./constants.js";
import { labNamespacesPresent, tearDownLab } from "./teardown.js";

const USAGE = `usage: pnpm lab <verb> [args]

  up [--fresh] [--no-agents] [--sshd | --systemd] [--together | --stagger MS]
                          build the namespaces, write configs, start stand-ins and both agents,
                          wait until exactly one node holds the VIP (--sshd: real sshd and an
                          own filesystem view on each MN; --systemd: also systemd as each MN's PID 1)
  status [--json]         each node: agent status, services, keepalived, faults; who answers ARP
  down                    kill everything in this lab's namespaces (mnha-lab-* by default), delete them, remove its state dir
  holder                  which node has the VIP on its eth0
  reset                   heal faults, boot crashed nodes, restart what is missing, wait stable
  sample [SECONDS]        run the client samplers (HTTP + ARP) for SECONDS (default 5) and report
  kill-service NODE SVC   SIGKILL a stand-in (SVC: ${STANDIN_SERVICES.map((s) => s.name).join(", ")})
  start-service NODE SVC  (re)start a stand-in
  kill-agent NODE         SIGKILL the agent only (its keepalived stays)
  stop-agent NODE         SIGTERM the agent (it hands the VIP over, stops keepalived, exits)
  start-agent NODE        start the agent (kills a keepalived left behind, as systemd would)
  kill-keepalived NODE    SIGKILL keepalived of that node
  pause-agent NODE        SIGSTOP the agent
  resume-agent NODE       SIGCONT the agent
  crash NODE              cut the node's wire and SIGKILL all its processes
  boot NODE               reboot state, wire up, start stand-ins and agent
  cut-peer-link           drop IP between mn1 and mn2 (ARP still flows)
  heal-peer-link
  cut-gateway NODE        the node can no longer reach the gateway
  heal-gateway NODE
  demote NODE             run \`mnha demote --yes\` on NODE

NODE is ${MN_NODES.join(" or ")}.`;

const VERBS = [
  "up", "status", "down", "holder", "reset", "sample", "kill-service", "start-service", "kill-agent", "stop-agent", "start-agent", "kill-keepalived",
  "pause-agent", "resume-agent", "crash", "boot", "cut-peer-link", "heal-peer-link", "cut-gateway", "heal-gateway", "demote",
];

class UsageError extends Error {}

function nodeArg(value: string | undefined): MnNode {
  if (value === undefined || !isMnNode(value)) throw new UsageError(`expected a node (${MN_NODES.join(" or ")}), got ${value ?? "nothing"}`);
  return value;
}

function serviceArg(value: string | undefined): ServiceName {
  const names = STANDIN_SERVICES.map((s) => s.name as string);
  if (value === undefined || !names.includes(value)) throw new UsageError(`expected a service (${names.join(", ")}), got ${value ?? "nothing"}`);
  return value as ServiceName;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      fresh: { type: "boolean", default: false },
      "no-agents": { type: "boolean", default: false },
      sshd: { type: "boolean", default: false },
      systemd: { type: "boolean", default: false },
      together: { type: "boolean", default: false },
      stagger: { type: "string" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [verb, ...rest] = positionals;
  if (values.help || verb === undefined || verb === "help") {
    console.log(USAGE);
    return verb === undefined && !values.help ? 2 : 0;
  }

  if (!VERBS.includes(verb)) throw new UsageError(`unknown verb "${verb}"`);

  if (verb === "down") {
    const report = await tearDownLab();
    console.log(
      report.namespacesRemoved.length === 0
        ? "lab down (nothing was up)"
        : `lab down: ${report.processesKilled} processes killed, namespaces removed: ${report.namespacesRemoved.join(", ")}`,
    );
    for (const problem of report.problems) console.error(`problem: ${problem}`);
    return report.problems.length === 0 ? 0 : 1;
  }

  if (!["up", "status", "holder"].includes(verb) && (await labNamespacesPresent()).length === 0) {
    console.error(`lab: the lab is not up (no ${LAB_PREFIX}-* namespaces)\nhint: start it: pnpm lab up`);
    return 1;
  }

  const { Lab } = await import("./lab.js");
  const { createLogger } = await import("@mnha/shared");
  const logger = createLogger({ level: values.verbose ? "info" : "warn", pretty: true, destination: process.stderr });
  const stagger = values.stagger === undefined ? undefined : Number.parseInt(values.stagger, 10);
  if (stagger !== undefined && !(Number.isInteger(stagger) && stagger >= 0)) throw new UsageError(`--stagger takes milliseconds, got ${values.stagger}`);
  const lab = new Lab({ logger, agentStart: values.together ? "together" : (stagger ?? "sequential"), sshd: values.sshd, systemd: values.systemd });

  switch (verb) {
    case "up": {
      const result = await lab.up({ fresh: values.fresh, agents: !values["no-agents"] });
      console.log(
        result.holder === null
          ? `lab up without agents in ${(result.tookMs / 1000).toFixed(1)} s (stand-ins running)`
          : `lab up in ${(result.tookMs / 1000).toFixed(1)} s: ${result.holder} holds the VIP`,
      );
      return 0;
    }
    case "status": {
      const { printStatus } = await import("./report.js");
      const status = await lab.status();
      if (values.json) console.log(JSON.stringify(status, null, 2));
      else printStatus(status);
      return 0;
    }
    case "holder": {
      const holders = await lab.holders();
      console.log(values.json ? JSON.stringify({ holders }) : holders.length === 0 ? "nobody holds the VIP" : holders.join(" and "));
      return holders.length === 1 ? 0 : 1;
    }
    case "reset": {
      const stable = await lab.reset();
      console.log(`lab reset: ${stable.holder} holds the VIP, ${stable.standby} stands by`);
      return 0;
    }
    case "sample": {
      const seconds = rest[0] === undefined ? 5 : Number.parseFloat(rest[0]);
      if (!(seconds > 0 && seconds <= 600)) throw new UsageError(`sample takes 0-600 seconds, got ${rest[0]}`);
      const { analyze, describeAnalysis } = await import("./analysis.js");
      const { sleep } = await import("./exec.js");
      const sampler = lab.sampler("cli");
      await sampler.start();
      await sleep(seconds * 1000);
      const records = await sampler.stop();
      for (const line of describeAnalysis(analyze(records))) console.log(line);
      return 0;
    }
    case "kill-service": {
      const node = nodeArg(rest[0]);
      const service = serviceArg(rest[1]);
      const pids = await lab.killService(node, service);
      console.log(pids.length === 0 ? `${node}/${service} was not running` : `killed ${node}/${service} (pid ${pids.join(", ")})`);
      return 0;
    }
    case "start-service": {
      const node = nodeArg(rest[0]);
      const service = serviceArg(rest[1]);
      console.log(`started ${node}/${service} (pid ${await lab.startService(node, service)})`);
      return 0;
    }
    case "kill-agent": {
      const node = nodeArg(rest[0]);
      const pid = await lab.killAgent(node);
      console.log(pid === null ? `the ${node} agent was not running` : `killed the ${node} agent (pid ${pid})`);
      return 0;
    }
    case "stop-agent": {
      const node = nodeArg(rest[0]);
      const pid = await lab.stopAgent(node);
      console.log(pid === null ? `the ${node} agent was not running` : `stopped the ${node} agent with SIGTERM (pid ${pid})`);
      return 0;
    }
    case "start-agent": {
      const node = nodeArg(rest[0]);
      console.log(`the ${node} agent runs (pid ${await lab.startAgent(node)})`);
      return 0;
    }
    case "kill-keepalived": {
      const node = nodeArg(rest[0]);
      const pids = await lab.killKeepalived(node);
      console.log(pids.length === 0 ? `no keepalived ran on ${node}` : `killed keepalived on ${node} (pid ${pids.join(", ")})`);
      return 0;
    }
    case "pause-agent": {
      const node = nodeArg(rest[0]);
      console.log(`paused the ${node} agent (pid ${await lab.pauseAgent(node)}); resume: pnpm lab resume-agent ${node}`);
      return 0;
    }
    case "resume-agent": {
      const node = nodeArg(rest[0]);
      const pid = await lab.resumeAgent(node);
      console.log(pid === null ? `the ${node} agent is not running` : `resumed the ${node} agent (pid ${pid})`);
      return 0;
    }
    case "crash": {
      const node = nodeArg(rest[0]);
      const pids = await lab.crash(node);
      console.log(`${node} crashed: wire cut, ${pids.length} processes killed; bring it back: pnpm lab boot ${node}`);
      return 0;
    }
    case "boot": {
      const node = nodeArg(rest[0]);
      await lab.boot(node);
      console.log(`${node} booted: stand-ins and agent started`);
      return 0;
    }
    case "cut-peer-link":
      await lab.cutPeerLink();
      console.log("peer link cut: IP between mn1 and mn2 dropped (ARP flows; gateway and client unaffected)");
      return 0;
    case "heal-peer-link":
      await lab.healPeerLink();
      console.log("peer link healed");
      return 0;
    case "cut-gateway": {
      const node = nodeArg(rest[0]);
      await lab.cutGateway(node);
      console.log(`${node} can no longer reach the gateway`);
      return 0;
    }
    case "heal-gateway": {
      const node = nodeArg(rest[0]);
      await lab.healGateway(node);
      console.log(`${node} reaches the gateway again`);
      return 0;
    }
    case "demote": {
      const node = nodeArg(rest[0]);
      const result = await lab.demote(node);
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      return result.code;
    }
    default:
      throw new UsageError(`unknown verb "${verb}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError || (error as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      console.error(`lab: ${(error as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    const hint = (error as { hint?: string }).hint;
    console.error(`lab: ${(error as Error).message ?? String(error)}`);
    if (hint) console.error(`hint: ${hint}`);
    process.exit(1);
  },
);
