/** `mnha events` for people: one line per event, newest first. */
import type { HaEvent } from "../contracts.js";
import { renderTable, truncate } from "./render-table.js";

/** Newest first: by wall time for display, then by sequence within a node. */
export function newestFirst(events: readonly HaEvent[]): HaEvent[] {
  return [...events].sort((a, b) => (a.time === b.time ? b.seq - a.seq : a.time < b.time ? 1 : -1));
}

/** `filters`: the filters given, named when nothing matched them. */
export function renderEvents(events: readonly HaEvent[], filters: string | null = null): string {
  if (events.length === 0) return filters === null ? "no HA events recorded\n" : `no HA events match ${filters}\n`;
  const rows = [["TIME", "NODE", "TYPE", "MESSAGE"], ...events.map((e) => [e.time, e.node, e.type, truncate(e.message.replace(/\s+/g, " "), 120)])];
  return `${renderTable(rows, "")}\n`;
}
