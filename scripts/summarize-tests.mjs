// Prints one closing line for the whole run, "N passed, N failed", from vitest's JSON reports.
import { existsSync, readFileSync } from "node:fs";

let passed = 0;
let failed = 0;
let skipped = 0;
const notRun = [];
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    notRun.push(file);
    continue;
  }
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}${notRun.length ? `; not run: ${notRun.join(", ")}` : ""}`);
