/** What a seed overwrites and how far it got, in operators' words (CLI, agent, install-ha). */
import { formatBytes } from "../util/format.js";
import type { DatabaseSummary, SeedProgress } from "./seed.js";

export function describeSummary(s: DatabaseSummary): string {
  if (s.schemas.length === 0) return "  no databases (besides the server's own)\n";
  const rows = s.schemas.map((x) => `  ${x.name}: ${x.tables} tables, about ${x.approxRows} rows, ${formatBytes(x.bytes)}`);
  return `${rows.join("\n")}\n  total: ${s.schemas.length} databases, ${s.tables} tables, about ${s.approxRows} rows, ${formatBytes(s.bytes)}\n`;
}

export function describeProgress(p: SeedProgress): string {
  const eta = p.etaMs === null ? "" : p.etaMs === 0 ? ", done" : `, about ${Math.ceil(p.etaMs / 1000)} s left`;
  return `copied ${formatBytes(p.bytes)} in ${(p.elapsedMs / 1000).toFixed(1)} s (${formatBytes(p.bytesPerSecond)}/s${eta})`;
}
