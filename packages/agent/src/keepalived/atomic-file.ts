import { readFile } from "node:fs/promises";

// Writing files atomically: writeFileAtomic in @mnha/shared.

/** The file's text, or null when it does not exist or cannot be read. */
export async function readFileOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return null;
  }
}
