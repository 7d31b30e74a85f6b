import { closeSync, constants, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "@mnha/shared";
import { afterAll, describe, expect, it } from "vitest";
import { NotifyFifoReader, parseNotifyLine } from "../../src/keepalived/notify-fifo.js";
import { runCommand } from "../../src/net/command.js";
import { waitUntil } from "../net/netns-lab.js";
import { tempDataDir } from "./helpers.js";

const dir = tempDataDir("fifo");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("parseNotifyLine", () => {
  it.each([
    ['INSTANCE "mnha_vip" MASTER 200', "master"],
    ['INSTANCE "mnha_vip" BACKUP 200', "backup"],
    ['INSTANCE "mnha_vip" FAULT 200', "fault"],
    ['INSTANCE "mnha_vip" STOP 200', "stopped"],
    ['INSTANCE "mnha_vip" MASTER', "master"],
  ])("maps %s to %s", (line, state) => {
    expect(parseNotifyLine(line, "mnha_vip")).toBe(state);
  });

  it.each([['INSTANCE "other" MASTER 200'], ['GROUP "mnha_vip" MASTER 200'], ['INSTANCE "mnha_vip" MASTER_RX_LOWER_PRI 200'], ["garbage"], [""]])("ignores %s", (line) => {
    expect(parseNotifyLine(line, "mnha_vip")).toBeNull();
  });
});

describe("NotifyFifoReader", () => {
  it("reads whole lines from a FIFO across writers, and closes it on stop", async () => {
    const fifo = join(dir, "notify.fifo");
    expect((await runCommand(["mkfifo", "-m", "0600", fifo])).code).toBe(0);
    const lines: string[] = [];
    const reader = new NotifyFifoReader({ path: fifo, logger: silentLogger(), onLine: (l) => lines.push(l) });
    reader.start();

    // Two writers in turn, like keepalived before and after a restart; a line split in two.
    for (const chunks of [['INSTANCE "mnha_vip" FAULT 200\nINSTANCE "mnha_', 'vip" BACKUP 200\n'], ['INSTANCE "mnha_vip" MASTER 200\n']]) {
      const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      for (const chunk of chunks) writeSync(fd, chunk);
      closeSync(fd);
    }
    expect(await waitUntil(() => lines.length === 3, 2_000)).not.toBeNull();
    expect(lines).toEqual(['INSTANCE "mnha_vip" FAULT 200', 'INSTANCE "mnha_vip" BACKUP 200', 'INSTANCE "mnha_vip" MASTER 200']);

    reader.stop();
    // No reader left: a non-blocking writer cannot open the FIFO (ENXIO).
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(() => openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)).toThrow(/ENXIO/);
  });

  it("a FIFO removed and made again at its path: readsPath says so, and reopenIfReplaced moves the reader to the new one", async () => {
    const fifo = join(dir, "replaced.fifo");
    expect((await runCommand(["mkfifo", "-m", "0600", fifo])).code).toBe(0);
    const lines: string[] = [];
    const reader = new NotifyFifoReader({ path: fifo, logger: silentLogger(), onLine: (l) => lines.push(l) });
    reader.start();
    expect(reader.readsPath()).toBe(true);
    expect(reader.reopenIfReplaced()).toBe(false);
    rmSync(fifo);
    expect(reader.readsPath(), "removed").toBe(false);
    expect((await runCommand(["mkfifo", "-m", "0600", fifo])).code).toBe(0);
    expect(reader.readsPath(), "made again: another FIFO").toBe(false);
    expect(reader.reopenIfReplaced()).toBe(true);
    expect(reader.readsPath()).toBe(true);
    const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fd, 'INSTANCE "mnha_vip" MASTER 200\n');
    closeSync(fd);
    expect(await waitUntil(() => lines.length === 1, 2_000)).not.toBeNull();
    expect(lines).toEqual(['INSTANCE "mnha_vip" MASTER 200']);
    reader.stop();
    expect(reader.readsPath(), "stopped: reads nothing").toBe(false);
  });
});
