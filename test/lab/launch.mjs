#!/usr/bin/env node
// Starts one process detached inside a lab namespace and returns at once: stdio to a log
// file, its pid to a pid file. Used by the lab (stand-ins, agents) and, as a command line,
// as the agents' restore command for the stand-ins:
//   node launch.mjs --ns NS --log FILE --pid-file FILE [--replace MATCH] -- COMMAND ARGS...
// --replace kills the process named in the pid file first, if it is alive and its command
// line contains MATCH (so a recycled pid is never killed).
import console from "node:console";
import process from "node:process";
import { setTimeout } from "node:timers";
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

function readPid(file) {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

async function replaceOld(pidFile, match) {
  const old = readPid(pidFile);
  if (old === null || !alive(old) || !cmdline(old).includes(match)) return;
  try {
    process.kill(old, "SIGKILL");
  } catch {
    return;
  }
  for (let i = 0; i < 100 && alive(old); i++) await new Promise((r) => setTimeout(r, 20));
}

/**
 * @param {{ namespace: string, argv: string[], logFile: string, pidFile: string, replaceMatching?: string, env?: Record<string, string | undefined> }} options
 * @returns {Promise<number>} the pid of the started process
 */
export async function launchDetached(options) {
  if (options.argv.length === 0) throw new Error("launchDetached: empty command");
  mkdirSync(dirname(options.logFile), { recursive: true });
  if (options.replaceMatching) await replaceOld(options.pidFile, options.replaceMatching);
  const log = openSync(options.logFile, "a");
  try {
    // `ip netns exec` execs the command in place, so the pid we get is the command's own.
    const child = spawn("ip", ["netns", "exec", options.namespace, ...options.argv], { detached: true, stdio: ["ignore", log, log], ...(options.env ? { env: options.env } : {}) });
    const pid = await new Promise((resolvePid, rejectPid) => {
      child.once("error", rejectPid);
      child.once("spawn", () => resolvePid(child.pid));
    });
    child.unref();
    writeFileSync(options.pidFile, `${pid}\n`);
    return pid;
  } finally {
    closeSync(log);
  }
}

async function main() {
  const separator = process.argv.indexOf("--");
  if (separator < 0) {
    console.error("usage: launch.mjs --ns NS --log FILE --pid-file FILE [--replace MATCH] -- COMMAND ARGS...");
    process.exit(2);
  }
  const { values } = parseArgs({
    args: process.argv.slice(2, separator),
    options: { ns: { type: "string" }, log: { type: "string" }, "pid-file": { type: "string" }, replace: { type: "string" } },
    strict: true,
  });
  if (!values.ns || !values.log || !values["pid-file"]) {
    console.error("launch.mjs: --ns, --log and --pid-file are required");
    process.exit(2);
  }
  const pid = await launchDetached({
    namespace: values.ns,
    argv: process.argv.slice(separator + 1),
    logFile: values.log,
    pidFile: values["pid-file"],
    ...(values.replace ? { replaceMatching: values.replace } : {}),
  });
  console.log(`started pid ${pid} in ${values.ns}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`launch.mjs: ${error.message}`);
    process.exit(1);
  });
}
