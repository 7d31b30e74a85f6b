/**
 * Reading a password without it ever reaching argv, a log or the screen: from a file
 * (0600, for scripts), from an environment variable, or typed at a prompt without echo.
 */
import { readFileSync, statSync } from "node:fs";
import { MnhaError } from "@mnha/shared";

export interface SecretSource {
  file?: string;
  /** Name of an environment variable holding the secret. */
  envName?: string;
  env?: Record<string, string | undefined>;
  /** Ask on this terminal when neither a file nor a variable gives the secret. */
  prompt?: { question: string; input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }; output: { write(text: string): unknown } };
}

/** The file's content without its final newline; refuses a file others can read. */
export function readSecretFile(file: string, what: string): string {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (error) {
    throw new MnhaError("SECRET_UNREADABLE", `the ${what} file ${file} cannot be read: ${(error as Error).message}`, { hint: `create it with the ${what} on one line: install -m 600 /dev/null ${file}, then edit it` });
  }
  if ((mode & 0o077) !== 0) throw new MnhaError("SECRET_INSECURE", `the ${what} file ${file} can be read by other users (mode ${(mode & 0o777).toString(8)})`, { hint: `chmod 600 ${file}` });
  const text = readFileSync(file, "utf8").replace(/\r?\n$/, "");
  if (text === "") throw new MnhaError("SECRET_UNREADABLE", `the ${what} file ${file} is empty`, { hint: `write the ${what} into ${file} on one line` });
  return text;
}

export async function readSecret(source: SecretSource, what: string): Promise<string | null> {
  if (source.file !== undefined) return readSecretFile(source.file, what);
  if (source.envName !== undefined) {
    const value = (source.env ?? process.env)[source.envName];
    if (value !== undefined && value !== "") return value;
  }
  if (source.prompt !== undefined && source.prompt.input.isTTY === true) return promptHidden(source.prompt);
  return null;
}

/** Reads one line from a TTY in raw mode, echoing nothing. Ctrl-C cancels. */
export function promptHidden(prompt: NonNullable<SecretSource["prompt"]>): Promise<string> {
  const { input, output } = prompt;
  output.write(prompt.question);
  return new Promise((resolve, reject) => {
    let typed = "";
    const finish = (error: Error | null) => {
      input.removeListener("data", onData);
      input.setRawMode?.(false);
      (input as NodeJS.ReadStream).pause?.();
      output.write("\n");
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: Buffer | string) => {
      for (const char of chunk.toString("utf8")) {
        if (char === "\r" || char === "\n") return finish(null);
        if (char === "\u0003") return finish(new MnhaError("USAGE", "cancelled at the password prompt; nothing was changed", { hint: "run the command again" }));
        if (char === "\u007f" || char === "\b") typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    input.setRawMode?.(true);
    (input as NodeJS.ReadStream).resume?.();
    input.on("data", onData);
  });
}
