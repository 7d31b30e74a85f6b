import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Tests run against the TypeScript sources; the lab's agents run the built dist.
const alias = {
  "@mnha/protocol": fileURLToPath(new URL("./packages/protocol/src/index.ts", import.meta.url)),
  "@mnha/shared": fileURLToPath(new URL("./packages/shared/src/index.ts", import.meta.url)),
  "@mnha/agent": fileURLToPath(new URL("./packages/agent/src/index.ts", import.meta.url)),
};

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          include: ["packages/*/test/**/*.test.ts"],
          // Both cores (vitest's default leaves one idle): the unit suite in 2 minutes instead of 3.5.
          maxWorkers: 2,
          testTimeout: 20_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          // Two lab test files at a time, each vitest worker in its own lab (test/lab/constants.ts:
          // LAB_NAME). Two, not more: the machines have two cores, and the lab's timing floors
          // (the ARP sampler's rate, failover bounds) assume the lab is not starved.
          fileParallelism: true,
          maxWorkers: 2,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
