import { EventEmitter } from "node:events";
import type { Connection } from "mariadb";
import { describe, expect, it } from "vitest";
import { KeptHealthReader } from "../../src/db/kept-health.js";
import { DEAD_HEALTH } from "../../src/db/mariadb.js";
import type { DatabaseHealth } from "../../src/db/types.js";

/** A connection double: only what the reader touches (error events, destroy, end). */
class FakeConnection extends EventEmitter {
  destroyed = false;
  ended = false;
  constructor(readonly id: number) {
    super();
  }
  destroy(): void {
    this.destroyed = true;
  }
  async end(): Promise<void> {
    this.ended = true;
  }
}

const ALIVE: DatabaseHealth = { ...DEAD_HEALTH, alive: true, error: null };

function reader(options: { connectDelayMs?: (n: number) => number; read?: (c: FakeConnection, fresh: boolean) => Promise<DatabaseHealth> } = {}) {
  const opened: FakeConnection[] = [];
  const reads: { id: number; fresh: boolean }[] = [];
  const kept = new KeptHealthReader({
    label: "local",
    connect: async () => {
      const connection = new FakeConnection(opened.length + 1);
      opened.push(connection);
      const delay = options.connectDelayMs?.(connection.id) ?? 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      return connection as unknown as Connection;
    },
    read: async (c, fresh) => {
      const connection = c as unknown as FakeConnection;
      reads.push({ id: connection.id, fresh });
      return options.read ? options.read(connection, fresh) : ALIVE;
    },
  });
  return { kept, opened, reads };
}

describe("KeptHealthReader", () => {
  it("keeps one connection across reads, and says which read is the first on it", async () => {
    const { kept, opened, reads } = reader();
    for (let i = 0; i < 3; i++) expect((await kept.health()).alive).toBe(true);
    expect(opened).toHaveLength(1);
    expect(reads).toEqual([{ id: 1, fresh: true }, { id: 1, fresh: false }, { id: 1, fresh: false }]);
    await kept.close();
    expect(opened[0]?.ended).toBe(true);
  });

  it("tries once more on a fresh connection when a reused one fails, and drops the failed one", async () => {
    let failOn = 0;
    const { kept, opened } = reader({ read: async (c) => (c.id === failOn ? Promise.reject(new Error("gone")) : ALIVE) });
    await kept.health();
    failOn = 1;
    expect((await kept.health()).alive).toBe(true);
    expect(opened.map((c) => c.destroyed)).toEqual([true, false]);
  });

  it("reports a refused statement on a fresh connection without a second try", async () => {
    const { kept, opened } = reader({ read: async () => Promise.reject(new Error("denied")) });
    const health = await kept.health();
    expect(health.alive).toBe(false);
    expect(health.error).toMatch(/^MariaDB on local refused a statement: /);
    expect(opened).toHaveLength(1);
  });

  it("keeps only the newest connection when two reads connect at once", async () => {
    // The first connect is slow (a check gave up on it); the second finishes first.
    const { kept, opened } = reader({ connectDelayMs: (id) => (id === 1 ? 80 : 10) });
    await Promise.all([kept.health(), kept.health()]);
    expect(opened).toHaveLength(2);
    expect(opened.filter((c) => !c.destroyed)).toHaveLength(1);
    await kept.health();
    expect(opened).toHaveLength(2);
  });

  it("drops the connection when the caller gives up, and after close() keeps none", async () => {
    let release: () => void = () => undefined;
    const { kept, opened } = reader({ read: (_c, fresh) => (fresh ? Promise.resolve(ALIVE) : new Promise((resolve) => (release = () => resolve(ALIVE)))) });
    await kept.health();
    const gaveUp = new AbortController();
    const pending = kept.health(gaveUp.signal);
    gaveUp.abort();
    release();
    await pending;
    expect(opened[0]?.destroyed).toBe(true);
    await kept.close();
    await kept.health();
    expect(opened.at(-1)?.destroyed).toBe(true);
  });
});
