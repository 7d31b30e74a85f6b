import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // .lab/ holds archived lab state (copies of installed suites among it): never source.
  { ignores: ["**/dist/**", "**/node_modules/**", "**/*.d.ts", "bench/**", ".lab/**", ".test-results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-imports": "off",
    },
  },
  {
    // The protocol package is portable: no Node built-ins.
    files: ["packages/protocol/src/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: ["node:*", "fs", "net", "crypto", "os", "path"] }],
    },
  },
  {
    // The election and health cores are pure: no IO, no global clock.
    files: ["packages/agent/src/core/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: ["node:*", "ws", "pino"] }],
      "no-restricted-globals": ["error", "setTimeout", "setInterval", "Date", "process"],
    },
  }
);
