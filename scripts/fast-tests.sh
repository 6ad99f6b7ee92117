#!/usr/bin/env bash
# The fast tests: the compiled test files that start no process (no daemon, no sendmail child, no
# provider suite). Prints their paths; `npm run test:fast` runs them.
cd "$(dirname "$0")/.." || exit 1
find dist/test -maxdepth 1 -name '*.test.js' | sort | while read -r file; do
  grep -qE "helpers/(daemon|sendmail|provider-suite)\.js|node:child_process" "$file" || echo "$file"
done
