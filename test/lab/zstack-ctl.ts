/**
 * The lab's stand-in for ZStack's `zstack-ctl`, installed into a node's own view
 * (/usr/local/bin/zstack-ctl) for tests of a pair installed by install-ha, whose default
 * services restore, stop and start the MN and the UI with it:
 *   start_node / start_ui: start the node's stand-in (the lab's own restore command for it)
 *     and return at once, as the real one forks the MN and returns;
 *   stop_node / stop_ui: stop the stand-in (done already is fine, as for the real one).
 * Each call first writes a line to the MN's log under /usr/local/zstack, as the real MN writes
 * its logs there: under mnha.service's read-only file system that write would fail.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { quoteCommand } from "../../packages/agent/src/provision/shell-quote.js";
import { LAB_NAME, nodePaths, type MnNode } from "./constants.js";
import { nodeExec } from "./sshd.js";

/** Where the stand-in zstack-ctl logs each call, in the node's own view. */
export const ZSTACK_CTL_LOG = "/usr/local/zstack/logs/zstack-ctl.log";

export async function installZstackCtl(node: MnNode): Promise<void> {
  const config = parseYaml(readFileSync(nodePaths(node).config, "utf8")) as { services: { name: string; restore: { command: string[] } }[] };
  const start = (service: string) => quoteCommand(config.services.find((s) => s.name === service)?.restore.command ?? ["false"]);
  // The stand-in's own command line, which no other process has (pkill -f matches it): the
  // lab's name in it, or this would kill the other lab's stand-ins too (a node view shares the
  // machine's PID namespace).
  const pattern = (service: string) => `standin[.]mjs --lab ${LAB_NAME} --node ${node} --service ${service} `;
  const script = [
    "#!/bin/sh",
    "# The mnha lab's stand-in for ZStack's zstack-ctl (test/lab/zstack-ctl.ts).",
    "set -eu",
    `mkdir -p "$(dirname ${ZSTACK_CTL_LOG})"`,
    `echo "$(date -u +%FT%TZ) \${1:-} by pid $$" >> ${ZSTACK_CTL_LOG}`,
    'case "${1:-}" in',
    `  start_node) exec ${start("mn")} ;;`,
    `  start_ui) exec ${start("ui")} ;;`,
    `  stop_node) pkill -KILL -f '${pattern("mn")}' || true ;;`,
    `  stop_ui) pkill -KILL -f '${pattern("ui")}' || true ;;`,
    '  *) echo "zstack-ctl (lab): ${1:-} is not supported here" >&2; exit 2 ;;',
    "esac",
    "",
  ].join("\n");
  const written = await nodeExec(node, ["sh", "-c", "mkdir -p /usr/local/bin && cat > /usr/local/bin/zstack-ctl && chmod 755 /usr/local/bin/zstack-ctl"], { input: script });
  if (written.code !== 0) throw new Error(`installing the lab's zstack-ctl on ${node}: ${written.stderr.trim()}`);
}
