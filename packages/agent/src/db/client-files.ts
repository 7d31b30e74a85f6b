/**
 * Passwords for the MariaDB client programs go in option files (mode 0600, in a private
 * temporary directory), never on their command line, where `ps` would show them.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ClientOptionFiles {
  /** Writes `[client]` user/password to a new 0600 file and returns its path. */
  write(name: string, user: string, password: string | null): string;
  /** Removes the directory and every file in it. */
  remove(): void;
}

export function clientOptionFiles(): ClientOptionFiles {
  const dir = mkdtempSync(join(tmpdir(), "mnha-db-"));
  return {
    write(name, user, password) {
      const file = join(dir, `${name}.cnf`);
      const lines = ["[client]", `user=${quoteOption(user)}`, ...(password === null ? [] : [`password=${quoteOption(password)}`]), ""];
      writeFileSync(file, lines.join("\n"), { mode: 0o600 });
      return file;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An option-file value in double quotes, with backslashes and quotes escaped. */
export function quoteOption(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
