/**
 * Passwords for the MariaDB client programs go in option files (mode 0600, in a private
 * temporary directory), never on their command line, where `ps` would show them. The
 * directory does not outlive its command, interrupted or killed (util/temp-files.ts).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir, tempDirError } from "../util/temp-files.js";

export interface ClientOptionFiles {
  /** Writes `[client]` user/password to a new 0600 file and returns its path. */
  write(name: string, user: string, password: string | null): string;
  /** Removes the directory and every file in it. */
  remove(): void;
}

/** `$TMPDIR/mnha-db-<pid>-*`. */
export const OPTION_FILES_PREFIX = "mnha-db-";
const WHAT = "write the MariaDB client's option files";

export function clientOptionFiles(): ClientOptionFiles {
  const dir = makeTempDir(OPTION_FILES_PREFIX, WHAT);
  return {
    write(name, user, password) {
      const file = join(dir.path, `${name}.cnf`);
      const lines = ["[client]", `user=${quoteOption(user)}`, ...(password === null ? [] : [`password=${quoteOption(password)}`]), ""];
      try {
        writeFileSync(file, lines.join("\n"), { mode: 0o600 });
      } catch (error) {
        throw tempDirError(error, WHAT);
      }
      return file;
    },
    remove: () => dir.remove(),
  };
}

/** An option-file value in double quotes, with backslashes and quotes escaped. */
export function quoteOption(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
