/**
 * SSH carries one command string, which the remote login shell parses. Every remote command
 * is built from an argument array with quoteCommand, so no value is ever interpreted by
 * that shell: each argument becomes one word, whatever it contains.
 */
import { MnhaError } from "@mnha/shared";

const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One argument as a POSIX shell word: left bare when plainly safe, else single-quoted. */
export function quoteArg(arg: string): string {
  if (arg.includes("\0")) throw new MnhaError("USAGE", "a remote command argument contains a NUL byte", { hint: "remove the NUL byte from the value" });
  if (arg === "") return "''";
  if (PLAIN_WORD.test(arg)) return arg;
  // Inside single quotes nothing is special but the quote itself: close, escape it, reopen.
  return `'${arg.replace(/'/g, "'\\''")}'`;
}

/** An argument array as one command string for SSH's exec request. */
export function quoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new MnhaError("INTERNAL", "empty remote command", { hint: "this is a bug in mnha; report it" });
  return argv.map(quoteArg).join(" ");
}
