/** The hand-written sendmail flag parser, on the command lines real callers use. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SubmitError } from '../src/errors.js';
import { parseSendmailArgs } from '../src/sendmail/args.js';

const usageError = (argv: string[], pattern: RegExp) =>
  assert.throws(
    () => parseSendmailArgs(argv),
    (error: unknown) => error instanceof SubmitError && error.code === 'EUSAGE' && pattern.test(error.message),
  );

describe('sendmail flag parser', () => {
  it("parses cron's exact invocation", () => {
    const args = parseSendmailArgs(['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root']);
    assert.equal(args.mode, 'deliver');
    assert.equal(args.fullName, 'CronDaemon');
    assert.equal(args.ignoreDots, true);
    assert.deepEqual(args.recipients, ['root']);
    assert.deepEqual(args.ignored, ['-B8BITMIME', '-oem']);
  });

  it("parses PHP's -t -i and the bundled -ti", () => {
    for (const argv of [['-t', '-i'], ['-ti']]) {
      const args = parseSendmailArgs(argv);
      assert.equal(args.readRecipients, true);
      assert.equal(args.ignoreDots, true);
      assert.deepEqual(args.recipients, []);
    }
  });

  it('takes -f/-r/-F values attached or as the next argument, and strips <> from senders', () => {
    assert.equal(parseSendmailArgs(['-fme@example.org', 'a@example.net']).sender, 'me@example.org');
    assert.equal(parseSendmailArgs(['-f', '<me@example.org>', 'a@example.net']).sender, 'me@example.org');
    assert.equal(parseSendmailArgs(['-r', 'bounce@example.org', 'x']).sender, 'bounce@example.org');
    assert.equal(parseSendmailArgs(['-f', '<>', 'x']).sender, '');
    assert.equal(parseSendmailArgs(['-F', 'Jane Doe', 'x']).fullName, 'Jane Doe');
  });

  it('-oi is -i; other -o options are accepted and ignored', () => {
    const args = parseSendmailArgs(['-oi', '-odi', '-oep', '-om', '-oQ/tmp/q', 'a@example.net']);
    assert.equal(args.ignoreDots, true);
    assert.deepEqual(args.ignored, ['-odi', '-oep', '-om', '-oQ/tmp/q']);
  });

  it('picks the mode from -b, -q, -I and the program name', () => {
    assert.equal(parseSendmailArgs(['-bs']).mode, 'smtp');
    assert.equal(parseSendmailArgs(['-bp']).mode, 'queue-list');
    assert.equal(parseSendmailArgs(['-bi']).mode, 'newaliases');
    assert.equal(parseSendmailArgs(['-I']).mode, 'newaliases');
    assert.equal(parseSendmailArgs(['-bm', 'x']).mode, 'deliver');
    assert.equal(parseSendmailArgs(['-q']).mode, 'run-queue');
    assert.equal(parseSendmailArgs(['-q30m']).mode, 'run-queue');
    assert.equal(parseSendmailArgs([], 'mailq').mode, 'queue-list');
    assert.equal(parseSendmailArgs(['--json'], 'mailq').json, true);
    assert.equal(parseSendmailArgs(['-s'], 'mailq').summary, true);
    assert.equal(parseSendmailArgs(['-bp', '-s']).summary, true);
    assert.equal(parseSendmailArgs([], 'newaliases').mode, 'newaliases');
  });

  it('accepts and ignores -C, -O, -X and -d: they never reach the config or the file system', () => {
    const args = parseSendmailArgs(['-C', '/tmp/evil.cf', '-OQueueDirectory=/tmp', '-X', '/tmp/x.php', '-d0.1', '-t']);
    assert.deepEqual(args.ignored, ['-C/tmp/evil.cf', '-OQueueDirectory=/tmp', '-X/tmp/x.php', '-d0.1']);
    assert.equal(args.readRecipients, true);
  });

  it('accepts the remaining compatibility options', () => {
    const args = parseSendmailArgs(['-v', '-G', '-U', '-N', 'never', '-R', 'hdrs', '-V', 'env1', '-h', '5', '-L', 'tag', '-B7BIT', 'a@example.net']);
    assert.equal(args.verbose, true);
    assert.deepEqual(args.recipients, ['a@example.net']);
  });

  it('-- ends the options; addresses and options may be mixed', () => {
    assert.deepEqual(parseSendmailArgs(['-i', '--', 'a@example.net', '-b@example.net']).recipients, ['a@example.net', '-b@example.net']);
    const mixed = parseSendmailArgs(['a@example.net', '-oi', 'b@example.net']);
    assert.deepEqual(mixed.recipients, ['a@example.net', 'b@example.net']);
    assert.equal(mixed.ignoreDots, true);
  });

  it('refuses unknown options, missing values and unsupported modes', () => {
    usageError(['-Z'], /unknown option -Z/);
    usageError(['-tZ'], /unknown option -Z/);
    usageError(['--help'], /unknown option --help/);
    usageError(['-f'], /option -f requires a value/);
    usageError(['-bd'], /mailshim serve/);
    usageError(['-bt'], /unsupported mode -bt/);
  });
});
