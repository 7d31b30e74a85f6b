import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

let counter = 0;

/** A temp file name next to `path` (same directory, so a rename is atomic). */
export function tempPathFor(path: string): string {
  counter = (counter + 1) % 1_000_000;
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${counter}`);
}

/**
 * Replaces `path` with `text` atomically: write a temp file in the same directory, flush it,
 * rename it over the target. Readers (keepalived's inotify watch) only ever see a whole file.
 */
export async function writeFileAtomic(path: string, text: string, options: { mode?: number; sync?: boolean } = {}): Promise<void> {
  const temp = tempPathFor(path);
  const handle = await open(temp, "w", options.mode ?? 0o600);
  try {
    await handle.writeFile(text, "utf8");
    // Flags that only matter "now" (gate) skip the flush: it would only slow a failover.
    if (options.sync ?? true) await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** The file's text, or null when it does not exist or cannot be read. */
export async function readFileOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return null;
  }
}
