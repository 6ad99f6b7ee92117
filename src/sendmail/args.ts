/**
 * sendmail's own command line, parsed by hand.
 *
 * Why not yargs: sendmail options are getopt(3) single letters whose values are glued to the
 * letter (`-FCronDaemon`, `-oi`, `-oem`, `-q30m`, `-B8BITMIME`, `-fuser@example.com`), `-o`
 * and `-b` are two-letter option *families*, `-q` takes an optional attached value, and a
 * bundle like `-ti` is two flags. yargs reads `-FCronDaemon` as eleven boolean flags and
 * `-oi` as `-o -i`; no configuration makes it parse this grammar. It is also the hot path
 * (cron runs this once per job), so it must not load a big parser.
 *
 * Rules (as sendmail/Postfix): options may be bundled (`-ti`); an option that takes a value uses
 * the rest of its argument or, if empty, the next argument; `--` ends options; addresses and
 * options may be mixed (GNU getopt permutes), an address never starts with `-`.
 *
 * `-C`, `-O`, `-X`, `-d` are accepted and *ignored*: they never change which config is read or
 * make mailshim write a file (CVE-2016-10033 was `-X` turning PHP's mail() into a file writer).
 */
import { isEnvid, parseNotify, parseRet, type SendmailDsn } from '../intake/dsn-params.js';
import { SubmitError } from '../errors.js';

export type Mode = 'deliver' | 'smtp' | 'queue-list' | 'newaliases' | 'run-queue';

export interface SendmailArgs {
  mode: Mode;
  /** -t: take recipients from To/Cc/Bcc. */
  readRecipients: boolean;
  /** -i / -oi: a lone "." line does not end the message. */
  ignoreDots: boolean;
  /** -f / -r: envelope sender ("" is the null sender <>). */
  sender?: string;
  /** -F: full name for a From header we add. */
  fullName?: string;
  verbose: boolean;
  /** mailq --json */
  json: boolean;
  /** mailq -s: the queue's shape per recipient domain and age (qshape), not the list. */
  summary: boolean;
  recipients: string[];
  /** Options accepted for compatibility and ignored, as given (for -v and tests). */
  ignored: string[];
  /** -N notify, -R ret, -V envid (RFC 3461), for every recipient. */
  dsn?: SendmailDsn;
}

const usage = (message: string) => new SubmitError('EUSAGE', message);

/** Letters that take a value (attached or as the next argument). */
const WITH_VALUE = new Set(['b', 'B', 'C', 'd', 'e', 'f', 'F', 'h', 'L', 'M', 'N', 'o', 'O', 'p', 'r', 'R', 'V', 'X', 'A']);
/** Letters without a value that we honour or ignore. */
const FLAGS = new Set(['t', 'i', 'v', 'G', 'U', 'm', 'n', 's', 'c', 'I', 'x', 'q']);

const MODES: Record<string, Mode> = { m: 'deliver', s: 'smtp', p: 'queue-list', i: 'newaliases' };

function newArgs(mode: Mode): SendmailArgs {
  return { mode, readRecipients: false, ignoreDots: false, verbose: false, json: false, summary: false, recipients: [], ignored: [] };
}

/** Strips the angle brackets of `-f '<user@host>'`; `<>` is the null sender. */
function envelopeAddress(value: string): string {
  const trimmed = value.trim();
  const bracketed = /^<(.*)>$/.exec(trimmed);
  return bracketed ? bracketed[1]!.trim() : trimmed;
}

/**
 * Parses argv (without node and the script). `invokedAs` is the program name: `mailq` means -bp
 * and `newaliases` means -bi, as with every sendmail-compatible MTA.
 */
export function parseSendmailArgs(argv: readonly string[], invokedAs = 'sendmail'): SendmailArgs {
  const args = newArgs(invokedAs === 'mailq' ? 'queue-list' : invokedAs === 'newaliases' ? 'newaliases' : 'deliver');
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i++]!;
    if (arg === '--') {
      args.recipients.push(...argv.slice(i));
      break;
    }
    if (arg === '--json' && args.mode === 'queue-list') {
      args.json = true;
      continue;
    }
    if (arg === '-s' && args.mode === 'queue-list') {
      args.summary = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      args.recipients.push(arg);
      continue;
    }
    if (arg.startsWith('--')) throw usage(`unknown option ${arg}`);
    // A bundle of single letters; a letter with a value ends the bundle.
    let j = 1;
    while (j < arg.length) {
      const letter = arg[j++]!;
      if (letter === 'q') {
        // -q, -q30m, -qIid, -qf ...: the value is attached only, and always means "run the queue now".
        args.mode = 'run-queue';
        if (j < arg.length) args.ignored.push(`-q${arg.slice(j)}`);
        break;
      }
      if (FLAGS.has(letter)) {
        applyFlag(args, letter);
        continue;
      }
      if (!WITH_VALUE.has(letter)) throw usage(`unknown option -${letter}`);
      let value = arg.slice(j);
      if (value === '') {
        if (i >= argv.length) throw usage(`option -${letter} requires a value`);
        value = argv[i++]!;
      }
      applyValue(args, letter, value);
      break;
    }
  }
  return args;
}

function applyFlag(args: SendmailArgs, letter: string): void {
  switch (letter) {
    case 't':
      args.readRecipients = true;
      return;
    case 'i':
      args.ignoreDots = true;
      return;
    case 'v':
      args.verbose = true;
      return;
    case 'I':
      args.mode = 'newaliases';
      return;
    default:
      // -G (gateway), -U (initial submission), -m (me too), -n (no aliasing), -s, -c, -x: sendmail-only tuning.
      args.ignored.push(`-${letter}`);
  }
}

function applyValue(args: SendmailArgs, letter: string, value: string): void {
  switch (letter) {
    case 'b': {
      const mode = MODES[value];
      if (!mode) {
        if (value === 'd' || value === 'D') throw usage(`-b${value}: run "mailshim serve" for the daemon`);
        throw usage(`unsupported mode -b${value} (supported: -bm, -bs, -bp, -bi)`);
      }
      args.mode = mode;
      return;
    }
    case 'f':
    case 'r':
      args.sender = envelopeAddress(value);
      return;
    case 'F':
      args.fullName = value;
      return;
    case 'N': {
      // Postfix: "never", or a comma-separated list of "delay", "failure", "success".
      const notify = parseNotify(value);
      if (!notify) throw usage(`-N ${JSON.stringify(value)}: expected "never" or a list of "delay", "failure", "success"`);
      args.dsn = { ...args.dsn, notify };
      return;
    }
    case 'R': {
      const ret = parseRet(value);
      if (!ret) throw usage(`-R ${JSON.stringify(value)}: expected "hdrs" or "full"`);
      args.dsn = { ...args.dsn, ret };
      return;
    }
    case 'V':
      if (!isEnvid(value)) throw usage('-V: the envelope id must be 1 to 100 printable ASCII characters');
      args.dsn = { ...args.dsn, envid: value };
      return;
    case 'o':
      if (value === 'i') {
        args.ignoreDots = true;
        return;
      }
      // -oem/-oep/-oeq/-oew/-oee (error mode), -odb/-odi/-odq (delivery mode), -om, -oQdir, -oL..:
      // mailshim always queues durably and reports by exit code, so these change nothing.
      args.ignored.push(`-o${value}`);
      return;
    default:
      // -B body type, -h hops, -L tag, -p proto, -M macro, -A, -e and the
      // never-honoured -C config / -O option / -X logfile / -d debug.
      args.ignored.push(`-${letter}${value}`);
  }
}
