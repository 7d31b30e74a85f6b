/** Where a step plan records its progress: a JSON file (written atomically, 0600), or memory for tests. */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { MnhaError, writeFileAtomicSync } from "@mnha/shared";

export interface PlanState {
  version: number;
  plan: string;
  /** Names of the finished steps, in the order they finished. */
  done: string[];
  /** The step that failed last, and why (cleared when a step succeeds). */
  failed: { step: string; message: string } | null;
}

export interface PlanStateStore {
  load(): PlanState | null;
  save(state: PlanState): void;
  clear(): void;
  describe(): string;
}

export class MemoryPlanStore implements PlanStateStore {
  state: PlanState | null = null;
  load(): PlanState | null {
    return this.state === null ? null : structuredClone(this.state);
  }
  save(state: PlanState): void {
    this.state = structuredClone(state);
  }
  clear(): void {
    this.state = null;
  }
  describe(): string {
    return "the in-memory plan state";
  }
}

export class FilePlanStore implements PlanStateStore {
  constructor(readonly file: string) {}

  load(): PlanState | null {
    if (!existsSync(this.file)) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, "utf8"));
    } catch (error) {
      throw new MnhaError("PLAN_STATE", `the plan state file ${this.file} cannot be read: ${(error as Error).message}`, { hint: `remove ${this.file} to start the operation from its first step`, cause: error });
    }
    if (!isPlanState(parsed)) throw new MnhaError("PLAN_STATE", `the plan state file ${this.file} is not a plan state`, { hint: `remove ${this.file} to start the operation from its first step` });
    return parsed;
  }

  save(state: PlanState): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomicSync(this.file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  }

  clear(): void {
    rmSync(this.file, { force: true });
  }

  describe(): string {
    return this.file;
  }
}

function isPlanState(value: unknown): value is PlanState {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate["version"] === "number" && typeof candidate["plan"] === "string" && Array.isArray(candidate["done"]) && candidate["done"].every((name) => typeof name === "string");
}
