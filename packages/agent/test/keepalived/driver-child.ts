/**
 * A stand-in agent for agent-death.test.ts: runs a KeepalivedDriver with its gate open and
 * renews the lease every 100 ms, like the daemon, until it is killed. Prints one JSON line
 * once the VIP is up: { ready, keepalivedPid, guardPid }.
 * Usage: node --import tsx driver-child.ts CONFIG_JSON NETNS   (TSX_TSCONFIG_PATH=tsconfig.child.json)
 */
import { parseConfig, silentLogger } from "@mnha/shared";
import { KeepalivedDriver } from "../../src/keepalived/driver.js";

const [configJson, netns] = process.argv.slice(2);
if (!configJson || !netns) {
  console.error("usage: driver-child.ts CONFIG_JSON NETNS");
  process.exit(2);
}
const driver = new KeepalivedDriver({ config: parseConfig(JSON.parse(configJson)), logger: silentLogger(), netns });
await driver.start();
setInterval(() => driver.renewLease(), 100);
driver.renewLease();
await driver.setGate(true);
const deadline = Date.now() + 10_000;
while (!(await driver.vipPresent())) {
  if (Date.now() > deadline) {
    console.error("VIP did not come up");
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 10));
}
console.log(JSON.stringify({ ready: true, keepalivedPid: driver.pid(), guardPid: driver.leaseGuardPid() }));
