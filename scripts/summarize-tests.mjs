// Prints one closing line for the whole run, "N passed, N failed", from vitest's JSON reports.
// A file whose setup (beforeAll) failed fails without a failed test: its tests count as
// skipped, so the file is named, lest the line read "0 failed" for a failed run.
import { existsSync, readFileSync } from "node:fs";
import { relative } from "node:path";

let passed = 0;
let failed = 0;
let skipped = 0;
const notRun = [];
const failedOutsideTests = [];
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    notRun.push(file);
    continue;
  }
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  for (const result of report.testResults ?? []) {
    const failedTests = (result.assertionResults ?? []).filter((test) => test.status === "failed").length;
    if (result.status === "failed" && failedTests === 0) failedOutsideTests.push(relative(process.cwd(), result.name));
  }
}
const filesLine = failedOutsideTests.length ? `; ${failedOutsideTests.length} file(s) failed outside their tests (setup or teardown): ${failedOutsideTests.join(", ")}` : "";
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}${filesLine}${notRun.length ? `; not run: ${notRun.join(", ")}` : ""}`);
