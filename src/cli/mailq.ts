/**
 * `mailq` / `sendmail -bp` / `mailshim queue list`: the queue in Postfix's layout, or JSON with
 * --json. Streams: each message is printed as it is read, so the first line appears at once and
 * memory does not grow with the queue (an array of a million entries would need gigabytes).
 */
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import type { ClientConfig } from '../config/local.js';
import { SpoolError, SubmitError } from '../errors.js';
import { isQueueId, isSubmitToken } from '../spool/ids.js';
import { QueueShaper, type QueueEntry, type QueueFilter } from '../spool/listing.js';
import { formatShape } from './queue-summary.js';
import { listFromDaemon } from '../sendmail/submit.js';
import { EX } from './sysexits.js';

/** Asks the daemon (any user may); when it is down, reads the spool directly (needs its owner's rights). */
async function* queueSource(config: ClientConfig, filter: QueueFilter): AsyncGenerator<QueueEntry> {
  const fromDaemon = await listFromDaemon(config, filter);
  if (fromDaemon) {
    yield* fromDaemon;
    return;
  }
  if (!existsSync(config.spoolPath)) return;
  const [{ Spool }, { queueEntries }] = await Promise.all([import('../spool/spool.js'), import('../spool/listing.js')]);
  let spool;
  try {
    spool = Spool.openExisting(config.spoolPath);
  } catch (error) {
    const denied = error instanceof SpoolError && error.code === 'EACCES';
    throw new SubmitError(denied ? 'ENOPERM' : 'ETEMPFAIL', `the daemon is not running and the spool is not readable: ${(error as Error).message}`);
  }
  try {
    yield* queueEntries(spool.list(), filter);
  } finally {
    await spool.close();
  }
}

/** Messages still waiting in the maildrop (visible to its owner only: the directory is not listable). */
function maildropCount(dir: string): number {
  try {
    return readdirSync(dir).filter((name) => isSubmitToken(name) || isQueueId(name)).length;
  } catch {
    return 0;
  }
}

function arrival(iso: string): string {
  const d = new Date(iso);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()];
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${day} ${month} ${String(d.getDate()).padStart(2)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Postfix's mailq layout, piece by piece: `entry()` per message, then `end()`. */
export class QueuePrinter {
  private count = 0;
  private bytes = 0;

  entry(e: QueueEntry): string {
    const indent = ' '.repeat(47);
    let out = this.count === 0 ? '-Queue ID-        --Size-- ----Arrival Time---- -Sender/Recipient-------\n' : '';
    this.count++;
    this.bytes += e.size;
    const id = (e.id + (e.held ? '!' : '')).padEnd(17);
    out += `${id} ${String(e.size).padStart(8)} ${arrival(e.arrival)}  ${e.sender || 'MAILER-DAEMON'}\n`;
    for (const r of e.recipients) {
      if (r.lastError) out += `${indent}(${r.lastError.replace(/\s+/g, ' ').slice(0, 200)})\n`;
      out += `${indent}${r.address}\n`;
    }
    return out + '\n';
  }

  end(inMaildrop = 0, filtered = false): string {
    const waiting = inMaildrop > 0 ? `${inMaildrop} message(s) in the maildrop, waiting for the daemon\n` : '';
    if (this.count === 0) return `${filtered ? 'No message matches' : 'Mail queue is empty'}\n${waiting}`;
    return `-- ${Math.ceil(this.bytes / 1024)} Kbytes in ${this.count} Request${this.count === 1 ? '' : 's'}.\n${waiting}`;
  }
}

/** Thrown when our reader went away (`mailq | head`): stop quietly, as a SIGPIPE would. */
class ReaderGone extends Error {}

/** Writes with backpressure: waits while `out`'s buffer is full; ReaderGone once it failed or closed. */
async function write(out: NodeJS.WritableStream, text: string): Promise<void> {
  if ((out as { destroyed?: boolean }).destroyed) throw new ReaderGone();
  if (out.write(text)) return;
  // events.once rejects when 'error' comes first: both outcomes other than 'drain' mean the reader is gone.
  const drained = await Promise.race([
    once(out, 'drain').then(
      () => true,
      () => false,
    ),
    once(out, 'close').then(
      () => false,
      () => false,
    ),
  ]);
  if (!drained) throw new ReaderGone();
}

/**
 * --json prints the same document as before ({"queue": [...], "maildrop": N}), streamed: one entry
 * per line inside the array, so `jq` reads it whole and a line-oriented script can follow it.
 */
export async function mailq(config: ClientConfig, json: boolean, filter: QueueFilter = {}, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const swallow = () => undefined;
  out.on('error', swallow); // EPIPE: the reader stopped reading; handled as ReaderGone
  try {
    const printer = new QueuePrinter();
    let first = true;
    if (json) await write(out, '{"queue": [\n');
    for await (const entry of queueSource(config, filter)) {
      await write(out, json ? `${first ? '' : ',\n'}${JSON.stringify(entry)}` : printer.entry(entry));
      first = false;
    }
    const inMaildrop = maildropCount(config.submission.maildrop);
    const filtered = Object.keys(filter).length > 0;
    await write(out, json ? `${first ? '' : '\n'}], "maildrop": ${inMaildrop}}\n` : printer.end(inMaildrop, filtered));
    return EX.OK;
  } catch (error) {
    if (error instanceof ReaderGone) return EX.OK;
    throw error;
  } finally {
    out.off('error', swallow);
  }
}

/**
 * `mailq -s` (`sendmail -bp -s`): the queue's shape instead of the list — recipients still
 * waiting per domain and age bucket, like Postfix's qshape(1) and `mailshim queue summary`, read
 * from the same stream as the list (the daemon's, or the spool's when it is down).
 */
export async function mailqSummary(config: ClientConfig, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const shaper = new QueueShaper({});
  for await (const entry of queueSource(config, {})) {
    const waiting = entry.recipients.filter((r) => r.status !== 'delivered' && r.status !== 'failed').map((r) => r.address);
    shaper.add(Date.parse(entry.arrival), entry.sender, waiting);
  }
  out.write(formatShape(shaper.shape()));
  return EX.OK;
}
