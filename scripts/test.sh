#!/usr/bin/env bash
# The whole test suite from a clean clone: install what is needed, build, type-check, lint,
# unit tests, then the end-to-end lab tests (network namespaces, real Keepalived, real agents).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
pnpm run typecheck
pnpm run lint
mkdir -p .test-results
# A report left by an earlier run must not be counted as this run's (the lab tests do not run
# when the unit tests fail).
rm -f .test-results/unit.json .test-results/e2e.json
status=0
pnpm exec vitest run --project unit --reporter=default --reporter=json --outputFile.json=.test-results/unit.json || status=$?
if [ "$status" -eq 0 ]; then
  # Leftovers of an interrupted lab would make the lab tests fail for the wrong reason.
  # The lab tests run in two labs, one per vitest worker: <base>1 and <base>2, where the base
  # is $MNHA_LAB or "lab" (test/lab/constants.ts).
  base=${MNHA_LAB:-lab}
  for lab in "$base" "${base}1" "${base}2"; do MNHA_LAB=$lab pnpm -s lab down >/dev/null 2>&1 || true; done
  pnpm exec vitest run --project e2e --reporter=default --reporter=json --outputFile.json=.test-results/e2e.json || status=$?
fi
node scripts/summarize-tests.mjs .test-results/unit.json .test-results/e2e.json || true
exit "$status"
