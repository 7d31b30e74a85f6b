import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type MnhaConfig, type MnhaConfigInput } from "@mnha/shared";

/** A valid node config on the 10.251.0.0/24 test segment; `patch` edits the raw input first. */
export function testConfig(patch: (raw: MnhaConfigInput) => void = () => undefined): MnhaConfig {
  const raw: MnhaConfigInput = {
    node: { name: "mn-a", address: "10.251.0.2" },
    peers: [{ name: "mn-b", address: "10.251.0.3" }],
    vip: { address: "10.251.0.100", prefix: 24, interface: "mnha0" },
    gateway: { address: "10.251.0.1" },
    auth: { secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=" },
    services: [],
    dataDir: "/var/lib/mnha",
  };
  patch(raw);
  return parseConfig(raw, "test");
}

/** A fresh private temp directory (the driver's dataDir in tests). */
export function tempDataDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `mnha-ut-${prefix}-`));
}
