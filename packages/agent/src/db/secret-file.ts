/** Root-only files holding database passwords: read with a mode check, generated with 0600. */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { MnhaError } from "@mnha/shared";

/** Reads a password file; refuses one other users can read. */
export function readPasswordFile(file: string, what: string): string {
  let text: string;
  try {
    const stat = statSync(file);
    if ((stat.mode & 0o077) !== 0) throw new MnhaError("SECRET_INSECURE", `${what} file ${file} is readable by other users (mode ${(stat.mode & 0o777).toString(8)})`, { hint: `run: chmod 600 ${file}` });
    text = readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    if (error instanceof MnhaError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw new MnhaError("SECRET_UNREADABLE", `${what} file ${file} cannot be read (${code})`, {
      hint: code === "ENOENT" ? `create it (mode 0600) holding the password on one line` : "run as root, or check the file's permissions",
      fields: { file },
    });
  }
  if (text === "") throw new MnhaError("SECRET_UNREADABLE", `${what} file ${file} is empty`, { hint: "put the password on its first line" });
  return text;
}

/**
 * Creates the file with a new random password (0600, never overwriting one that exists);
 * returns whether it created it.
 */
export function ensureGeneratedPasswordFile(file: string): boolean {
  if (existsSync(file)) return false;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // URL-safe letters and digits only: no quoting trouble in my.cnf-style option files.
  const password = randomBytes(24).toString("base64url");
  const fd = openSync(file, "wx", 0o600);
  try {
    writeSync(fd, `${password}\n`);
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o600);
  return true;
}
