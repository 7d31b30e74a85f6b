#!/usr/bin/env bash
# The two-MN lab demo from a clean clone: install what is needed, build, then watch the VIP
# move when the holder's MN service dies. Tears the lab down at the end (and on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec node --import tsx test/lab/demo.ts "$@"
