import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { isAbsolute } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { checkSecretStrength } from "./config.js";
import { ConfigError, MnhaError, type ConfigProblem } from "./errors.js";

/**
 * The witness's own config (`mnha witness --config FILE`, a third machine): where it listens,
 * the two nodes it admits (by name and source address), the pair's secret, and the file that
 * keeps its last grant across a restart.
 *
 *   listen: { address: 10.0.0.13, port: 7947 }
 *   nodes:
 *     - { name: mn1, address: 10.0.0.11 }
 *     - { name: mn2, address: 10.0.0.12 }
 *   auth: { secretFile: /etc/mnha/secret }
 *   stateFile: /var/lib/mnha-witness/grant.json
 */
const ipv4 = z.string().refine((v) => isIP(v) === 4, "an IPv4 address such as 10.0.0.13");
const nodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "a name of 1-63 letters, digits, '.', '_' or '-'");
const absolutePath = z.string().refine((v) => isAbsolute(v), "an absolute path");

export const WitnessServerConfigSchema = z.strictObject({
  listen: z.strictObject({ address: ipv4, port: z.number().int().min(1).max(65535).default(7947) }),
  nodes: z
    .array(z.strictObject({ name: nodeName, address: ipv4 }))
    .length(2, "exactly two nodes: the pair the witness arbitrates")
    .refine((n) => n[0]?.name !== n[1]?.name && n[0]?.address !== n[1]?.address, "the two nodes need different names and addresses"),
  auth: z.strictObject({ secretFile: absolutePath }),
  stateFile: absolutePath.default("/var/lib/mnha-witness/grant.json"),
});

export type WitnessServerConfig = z.infer<typeof WitnessServerConfigSchema>;

export interface LoadedWitnessConfig {
  file: string;
  config: WitnessServerConfig;
  secret: string;
}

export function loadWitnessConfig(path: string): LoadedWitnessConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new MnhaError("CONFIG_NOT_FOUND", `witness config file ${path} does not exist`, { hint: "pass --config FILE (docs/protocol.md, \"The witness\", shows one)" });
    throw new MnhaError("CONFIG_UNREADABLE", `witness config file ${path} cannot be read (${code ?? "error"})`, { hint: "run as root, or check the file's permissions" });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new MnhaError("CONFIG_SYNTAX", `witness config file ${path} is not valid YAML: ${doc.errors[0]?.message.split("\n")[0] ?? "syntax error"}`, { hint: "fix the YAML syntax at the line shown", fields: { file: path } });
  }
  const parsed = WitnessServerConfigSchema.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (!parsed.success) {
    const problems: ConfigProblem[] = parsed.error.issues.map((issue) => ({ path: issue.path.join(".") || "(root)", expected: issue.message }));
    throw new ConfigError(path, problems);
  }
  const config = parsed.data;
  const file = config.auth.secretFile;
  let secret: string;
  try {
    if ((statSync(file).mode & 0o077) !== 0) throw new MnhaError("SECRET_INSECURE", `secret file ${file} is readable by other users`, { hint: `run: chmod 600 ${file}` });
    secret = readFileSync(file, "utf8").trim();
  } catch (error) {
    if (error instanceof MnhaError) throw error;
    throw new MnhaError("SECRET_UNREADABLE", `secret file ${file} cannot be read: ${(error as Error).message}`, { hint: "use the pair's own secret file (the same content as on both MNs), mode 600" });
  }
  checkSecretStrength(secret, file);
  return { file: path, config, secret };
}
