/**
 * The seed of this node from its peer, as `mnha db seed|resync` and the agent's answer to a
 * `db-reseed` request (mnha restore on the VIP holder) both run it: the plan built from the
 * configuration, checked, then the copy.
 */
import type { MnhaConfig } from "@mnha/shared";
import { openLocalDatabase, openPeerDatabase, peerEndpoint, replicationSetup } from "./index.js";
import { readPasswordFile } from "./secret-file.js";
import { runSeed, seedPreflight, type SeedPlan, type SeedProgress, type SeedResult } from "./seed.js";

export function seedPlanFromConfig(config: MnhaConfig, operation: "seed" | "resync"): SeedPlan {
  const password = readPasswordFile(config.db.replication.passwordFile, "replication password");
  return {
    local: openLocalDatabase(config),
    peer: openPeerDatabase(config, password),
    localSocket: config.db.socket,
    rootUser: config.db.rootUser,
    rootPassword: config.db.rootPasswordFile === undefined ? null : readPasswordFile(config.db.rootPasswordFile, "MariaDB root password"),
    replication: replicationSetup(config, password),
    dataDir: config.dataDir,
    clientBinary: config.db.clientBinary,
    dumpBinary: config.db.dumpBinary,
    operation,
    peerName: peerEndpoint(config).name,
  };
}

/**
 * Checks, then copies the peer's database here (the caller has made sure this node is not the
 * VIP holder). The copy runs read-only; once complete, read_only is put back as it was before
 * (a half copy stays read-only).
 */
export async function resyncFromPeer(config: MnhaConfig, onProgress: (p: SeedProgress) => void): Promise<SeedResult> {
  const plan = seedPlanFromConfig(config, "resync");
  const preflight = await seedPreflight(plan);
  const wasReadOnly = await plan.local.readOnly();
  const result = await runSeed(plan, preflight, onProgress);
  if (!wasReadOnly) await plan.local.setReadOnly(false);
  return result;
}
