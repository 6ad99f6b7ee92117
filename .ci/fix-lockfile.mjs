// Adds lock entries for msgpackr-extract's other-platform binaries, which this registry mirror lacks (404),
// so `npm ci` sees package.json and package-lock.json in sync. They are never installed on Linux x64.
import { readFileSync, writeFileSync } from 'node:fs';
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const want = { 'darwin-arm64': ['darwin', 'arm64'], 'darwin-x64': ['darwin', 'x64'], 'linux-arm': ['linux', 'arm'], 'win32-x64': ['win32', 'x64'], 'linux-arm64': ['linux', 'arm64'] };
const base = lock.packages['node_modules/msgpackr-extract'];
if (!base) process.exit(0);
for (const [suffix, [os, cpu]] of Object.entries(want)) {
  const key = `node_modules/@msgpackr-extract/msgpackr-extract-${suffix}`;
  if (!lock.packages[key]) lock.packages[key] = { version: base.version, cpu: [cpu], license: 'MIT', optional: true, os: [os] };
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
