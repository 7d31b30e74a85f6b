/** Questions for a person at a terminal: one line of answer, or a yes/no (anything but y/yes is no). */
import { createInterface } from "node:readline";
import type { TextSink } from "./cli-io.js";

/** Writes the question and reads one line; "" when there is no input or it ends first. */
export async function askLine(question: string, input: NodeJS.ReadableStream | undefined, prompt: TextSink): Promise<string> {
  prompt.write(question);
  if (input === undefined) return "";
  const lines = createInterface({ input, terminal: false });
  try {
    return await new Promise<string>((resolve) => {
      lines.once("line", resolve);
      lines.once("close", () => resolve(""));
    });
  } finally {
    lines.close();
  }
}

export async function askYesNo(question: string, input: NodeJS.ReadableStream, prompt: TextSink): Promise<boolean> {
  return /^\s*y(es)?\s*$/i.test(await askLine(question, input, prompt));
}
