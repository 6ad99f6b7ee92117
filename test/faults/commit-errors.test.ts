/**
 * lmdb-js leaves two promises of a failed commit without an owner (see src/spool/commit-errors.ts);
 * each used to stop the daemon as an unhandled rejection. The filter must swallow exactly those
 * and still let any other unhandled rejection stop the process, as Node does by default.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { REPO } from '../helpers/daemon.js';
import { checked } from './helpers.js';

const script = (module: string) => `
import { ignoreOrphanCommitRejections } from ${JSON.stringify(module)};
ignoreOrphanCommitRejections();
let reject; const cause = new Promise((_, r) => (reject = r));
const failed = Object.assign(new Error('Commit failed (see commitError for details)'), { commitError: cause });
Promise.reject(failed); reject(new Error('No space left on device'));   // the order lmdb-js uses
setTimeout(() => { console.log('survived'); Promise.reject(new Error('a real bug')); }, 20);
setTimeout(() => console.log('still running'), 500);
`;

describe('orphan lmdb-js commit rejections', () => {
  it('are ignored; any other unhandled rejection still stops the process', (t) => {
    const module = pathToFileURL(join(REPO, 'dist/src/spool/commit-errors.js')).href;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script(module)], { encoding: 'utf8' });
    assert.match(run.stdout, /survived/);
    assert.doesNotMatch(run.stdout, /still running/);
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /a real bug/);
    checked(t, 'a failed commit\'s "Commit failed" and commitError rejections are swallowed; another rejection exits non-zero');
  });
});
