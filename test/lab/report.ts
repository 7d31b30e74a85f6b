/** The lab's state as a person reads it (`pnpm lab status`, the demo). */
import { LAB_PREFIX, LAB_STATE_DIR, VIP_ADDRESS } from "./constants.js";
import type { LabStatus, NodeSummary } from "./lab.js";

export function formatStatus(status: LabStatus): string[] {
  if (!status.up) return [`the lab is down (no ${LAB_PREFIX}-* namespaces); start it: pnpm lab up`];
  const lines: string[] = [];
  const holders = status.holders.length === 0 ? "nobody" : status.holders.join(" AND ");
  lines.push(`VIP ${VIP_ADDRESS}: on eth0 of ${holders}; ARP from the client answered by ${status.arpAnsweredBy.length === 0 ? "nobody" : status.arpAnsweredBy.join(" and ")}`);
  for (const node of status.nodes) lines.push(...formatNode(node));
  lines.push(`state, configs and logs: ${LAB_STATE_DIR}/`);
  return lines;
}

function formatNode(node: NodeSummary): string[] {
  const lines: string[] = [];
  const agent = node.agentPid === null ? "agent not running" : `agent pid ${node.agentPid}${node.agentPaused ? " (PAUSED)" : ""}`;
  const keepalived = node.keepalivedPids.length === 0 ? "no keepalived" : `keepalived pid ${node.keepalivedPids.join(",")}`;
  const faults = [node.linkUp ? "" : "WIRE CUT", node.faults.peerLinkCut ? "peer link cut" : "", node.faults.gatewayCut ? "gateway cut" : ""].filter((f) => f.length > 0);
  lines.push(`${node.node} ${node.address} ${node.mac}${node.vipOnEth0 ? " [VIP]" : ""}: ${agent}; ${keepalived}${faults.length > 0 ? `; faults: ${faults.join(", ")}` : ""}`);
  lines.push(`  services: ${node.services.map((s) => `${s.name} ${s.listening ? "up" : "DOWN"}`).join(", ")}`);
  const st = node.status;
  if (st === null) {
    lines.push(`  status: ${node.statusError ?? "unavailable"}`);
    return lines;
  }
  const self = st.self;
  lines.push(
    `  status: role ${self.role}, epoch ${self.epoch}, vipOwner ${st.vipOwner ?? "nobody"}, eligible ${self.eligible ? "yes" : `no (${self.reasons.join("; ")})`}, keepalived ${self.keepalived}, lease ${Math.round(self.leaseRemainingMs)} ms`,
  );
  lines.push(`  gateway ${st.gateway.reachable ? "reachable" : "UNREACHABLE"}; peer ${st.peer.node} ${st.peer.connected ? "connected" : "NOT connected"}`);
  const sick = self.services.filter((s) => !s.healthy);
  if (sick.length > 0) lines.push(`  unhealthy: ${sick.map((s) => `${s.name} (${s.detail ?? "?"})`).join(", ")}`);
  return lines;
}

export function printStatus(status: LabStatus): void {
  for (const line of formatStatus(status)) console.log(line);
}
