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
          testTimeout: 20_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          // Lab tests share one set of network namespaces: one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
