/** Plain-text tables for people: columns padded to their widest cell, no colours. */
import { stripControlChars } from "@mnha/shared";

/**
 * Text for the terminal: peer- and network-supplied strings lose control characters and
 * escape sequences (again: the store strips them at ingest too), newlines become spaces.
 */
export function terminalSafe(text: string): string {
  return stripControlChars(text, { keepNewlines: false });
}

export function renderTable(rawRows: readonly (readonly string[])[], indent = "  "): string {
  const rows = rawRows.map((row) => row.map(terminalSafe));
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("   ")}`.trimEnd())
    .join("\n");
}

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** 1234 -> "1.2 s", 3_723_000 -> "1h 2m 3s". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const totalSeconds = Math.floor(ms / 1_000);
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3_600);
  const minutes = Math.floor((totalSeconds % 3_600) / 60);
  const seconds = totalSeconds % 60;
  const parts = [days ? `${days}d` : "", hours ? `${hours}h` : "", minutes ? `${minutes}m` : "", !days && seconds ? `${seconds}s` : ""].filter(Boolean);
  return parts.join(" ");
}
