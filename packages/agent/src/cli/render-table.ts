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

