/** Property-based fuzz of the sendmail flag parser: any argv parses or is a usage error, never a crash or a file. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SubmitError } from '../src/errors.js';
import { parseSendmailArgs } from '../src/sendmail/args.js';

const option = fc.oneof(
  fc.constantFrom('-t', '-i', '-oi', '-v', '-G', '-U', '-bm', '-bs', '-bp', '-bi', '-q', '-q30m', '-odi', '-oem', '--', '-X', '-C', '-O', '-d0.1', '-f', '-F', '-r', '-N', '-R', '-V', '-L', '-h'),
  fc.string({ maxLength: 40 }).map((s) => '-' + s),
  fc.string({ maxLength: 60 }),
  fc.emailAddress(),
);

const KNOWN_FIELDS = new Set(['mode', 'readRecipients', 'ignoreDots', 'sender', 'fullName', 'verbose', 'json', 'summary', 'recipients', 'ignored', 'dsn']);

describe('sendmail flag parser fuzz', () => {
  it('every argv is either parsed into a known mode or rejected with a usage error', () => {
    fc.assert(
      fc.property(fc.array(option, { maxLength: 12 }), fc.constantFrom('sendmail', 'mailq', 'newaliases'), (argv, invokedAs) => {
        try {
          const args = parseSendmailArgs(argv, invokedAs);
          assert.ok(['deliver', 'smtp', 'queue-list', 'newaliases', 'run-queue'].includes(args.mode));
          assert.ok(Array.isArray(args.recipients) && args.recipients.every((r) => typeof r === 'string'));
          // Nothing the parser returns names a file to write or a config to read.
          for (const key of Object.keys(args)) assert.ok(KNOWN_FIELDS.has(key), `unexpected field ${key}`);
        } catch (error) {
          assert.ok(error instanceof SubmitError && error.code === 'EUSAGE', `unexpected ${String(error)}`);
          assert.ok(!error.message.includes('\n'), 'usage errors are one line');
        }
      }),
      { numRuns: 3000 },
    );
  });
});
