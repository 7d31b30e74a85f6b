/** A yes/no question for a person at a terminal; anything but y/yes is no. */
import { createInterface } from "node:readline";
import type { TextSink } from "./cli-io.js";

export async function askYesNo(question: string, input: NodeJS.ReadableStream, prompt: TextSink): Promise<boolean> {
  prompt.write(question);
  const lines = createInterface({ input, terminal: false });
  try {
    const answer = await new Promise<string>((resolve) => {
      lines.once("line", resolve);
      lines.once("close", () => resolve(""));
    });
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    lines.close();
  }
}
