/**
 * Replacing a file so that readers only ever see a whole one, and so that nobody who can
 * write in its directory can make us write elsewhere: the temp file gets a random name, is
 * created exclusively (O_EXCL: never an existing file, never through a planted symlink) and
 * opened with O_NOFOLLOW, flushed, then renamed over the target.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** Permissions of the new file (the umask may only remove bits). Default 0600. */
  mode?: number;
  /** fsync the file and its directory before returning (default true): the new content survives a crash. */
  sync?: boolean;
}

/** O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW: a new file of our own, or an error. */
const EXCLUSIVE_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** A temp file name next to `path` (same directory, so the rename is atomic) that nobody can guess. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(8).toString("hex")}.tmp`);
}

/** Synchronous: for the few writes that must be on disk before the caller goes on (the epoch). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const temp = tempPathFor(path);
  const fd = openSync(temp, EXCLUSIVE_CREATE, options.mode ?? 0o600);
  try {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    if (options.sync ?? true) fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, path);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    try {
      unlinkSync(temp);
    } catch {
      // renamed or never written
    }
    throw error;
  }
  if (options.sync ?? true) syncDirectory(dirname(path));
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const temp = tempPathFor(path);
  const handle = await open(temp, EXCLUSIVE_CREATE, options.mode ?? 0o600);
  try {
    await handle.writeFile(data);
    // Flags that only matter "now" (a gate) skip the flush: it would only slow a failover.
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
  if (options.sync ?? true) syncDirectory(dirname(path));
}

/** Makes a rename in `dir` durable. Best effort: some file systems refuse fsync on a directory. */
function syncDirectory(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    // the rename itself has happened
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
