/**
 * The store's schema, as numbered migrations applied at open (`PRAGMA user_version` holds the
 * version reached). A migration only ever adds; a database written by a newer mnha is refused.
 *
 * Loaded by the store worker: no imports beyond Node and better-sqlite3 (it must also run
 * from the TypeScript sources, where `@mnha/*` packages are not transpiled for a worker).
 */

export interface Migration {
  version: number;
  /** What it adds, for the log. */
  description: string;
  sql: string;
}

/** Event type of a gap marker: records `fromSeq..seq` of one origin are gone for good. */
export const GAP_EVENT_TYPE = "store.gap";
/** Series of a gap marker sample: `value` samples up to `seq` of one origin are gone for good. */
export const GAP_SERIES = "store.gap";

/**
 * Event types kept on the node that recorded them and never replicated (with every type below
 * them): summaries of refused strangers must not let anyone on the network fill the peer's
 * store. An event appended with `localOnly: true` is local-only too.
 */
export const LOCAL_ONLY_EVENT_TYPES: readonly string[] = ["peer.refusals"];

export function isLocalOnlyEventType(type: string): boolean {
  return LOCAL_ONLY_EVENT_TYPES.some((base) => type === base || type.startsWith(`${base}.`));
}

/**
 * Local-only events are numbered under an origin of their own, `<own origin>#local`, so the
 * replicated seq space has no holes for the peer to wait on. '#' is outside the protocol's
 * origin alphabet: such an origin can neither be sent nor received.
 */
export const LOCAL_ORIGIN_SUFFIX = "#local";

export function localOriginOf(origin: string): string {
  return `${origin}${LOCAL_ORIGIN_SUFFIX}`;
}

export function isLocalOrigin(origin: string): boolean {
  return origin.endsWith(LOCAL_ORIGIN_SUFFIX);
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "events, samples, origins, watermarks and gaps",
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

      -- Every origin whose records this database holds (its own and the peer's, past and present).
      CREATE TABLE origins (
        id INTEGER PRIMARY KEY,
        origin TEXT NOT NULL UNIQUE,
        node TEXT NOT NULL
      ) STRICT;

      -- Per origin and kind, the highest seq held with nothing missing below it. Kept apart from
      -- the records so that retention never moves it back.
      CREATE TABLE watermarks (
        origin_id INTEGER NOT NULL REFERENCES origins(id),
        kind TEXT NOT NULL CHECK (kind IN ('events', 'samples')),
        seq INTEGER NOT NULL,
        PRIMARY KEY (origin_id, kind)
      ) STRICT, WITHOUT ROWID;

      -- Seq ranges known to be gone for good (dropped on overflow, or removed by retention
      -- before they were copied here): the watermark steps over them.
      CREATE TABLE gaps (
        origin_id INTEGER NOT NULL REFERENCES origins(id),
        kind TEXT NOT NULL CHECK (kind IN ('events', 'samples')),
        from_seq INTEGER NOT NULL,
        to_seq INTEGER NOT NULL,
        PRIMARY KEY (origin_id, kind, from_seq, to_seq)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        origin_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        -- Set on gap markers only: the first seq the marker stands for.
        from_seq INTEGER,
        node TEXT NOT NULL,
        wall_ms INTEGER NOT NULL,
        mono_ms REAL NOT NULL,
        type TEXT NOT NULL,
        -- The first dotted segment of type ("election" for "election.role-changed").
        category TEXT NOT NULL,
        service TEXT,
        message TEXT NOT NULL,
        fields TEXT NOT NULL
      ) STRICT;
      CREATE UNIQUE INDEX events_by_origin_seq ON events (origin_id, seq);
      CREATE INDEX events_by_time ON events (wall_ms);
      CREATE INDEX events_by_node ON events (node, wall_ms);
      CREATE INDEX events_by_type ON events (type, wall_ms);
      CREATE INDEX events_by_category ON events (category, wall_ms);
      CREATE INDEX events_by_service ON events (service, wall_ms) WHERE service IS NOT NULL;

      -- One row per (node, series): samples refer to it by id.
      CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        node TEXT NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (node, name)
      ) STRICT;

      CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        origin_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        from_seq INTEGER,
        series_id INTEGER NOT NULL,
        wall_ms INTEGER NOT NULL,
        value REAL NOT NULL
      ) STRICT;
      CREATE UNIQUE INDEX samples_by_origin_seq ON samples (origin_id, seq);
      CREATE INDEX samples_by_time ON samples (wall_ms);
      -- Covering: count, min, max, last and the values for the median, read from the index.
      CREATE INDEX samples_by_series ON samples (series_id, wall_ms, value);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** "election.role-changed" -> "election". */
export function categoryOf(type: string): string {
  const dot = type.indexOf(".");
  return dot < 0 ? type : type.slice(0, dot);
}
