#!/bin/sh
# Flooder benchmark (see bench/flooder-bench.ts): builds, then runs the table.
set -e
cd "$(dirname "$0")/.."
npx tsc -p . >/dev/null || true
exec node dist/bench/flooder-bench.js "$@"
