/** `mailq` / `sendmail -bp`: the queue in Postfix's layout, or JSON with --json. */
import { existsSync, readdirSync } from 'node:fs';
import type { ClientConfig } from '../config/local.js';
import { SubmitError } from '../errors.js';
import { isQueueId, isSubmitToken } from '../spool/ids.js';
import type { QueueEntry } from '../spool/listing.js';
import { control } from '../sendmail/submit.js';
import { EX } from './sysexits.js';

/** Asks the daemon (any user may); when it is down, reads the spool directly (needs its owner's rights). */
async function fetchQueue(config: ClientConfig): Promise<QueueEntry[]> {
  const reply = await control(config, { op: 'list' });
  if (reply) {
    if (!reply.ok) throw new SubmitError(reply.code, reply.error);
    return reply.queue as QueueEntry[];
  }
  if (!existsSync(config.spoolPath)) return [];
  const [{ Spool }, { queueEntries }] = await Promise.all([import('../spool/spool.js'), import('../spool/listing.js')]);
  let spool;
  try {
    spool = Spool.openExisting(config.spoolPath);
  } catch (error) {
    throw new SubmitError('ETEMPFAIL', `the daemon is not running and the spool is not readable: ${(error as Error).message}`);
  }
  try {
    return queueEntries(spool.list());
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

export function formatQueue(entries: QueueEntry[], inMaildrop = 0): string {
  const waiting = inMaildrop > 0 ? `${inMaildrop} message(s) in the maildrop, waiting for the daemon\n` : '';
  if (entries.length === 0) return `Mail queue is empty\n${waiting}`;
  const indent = ' '.repeat(47);
  let out = '-Queue ID-        --Size-- ----Arrival Time---- -Sender/Recipient-------\n';
  let bytes = 0;
  for (const e of entries) {
    bytes += e.size;
    const id = (e.id + (e.held ? '!' : '')).padEnd(17);
    out += `${id} ${String(e.size).padStart(8)} ${arrival(e.arrival)}  ${e.sender || 'MAILER-DAEMON'}\n`;
    for (const r of e.recipients) {
      if (r.lastError) out += `${indent}(${r.lastError.replace(/\s+/g, ' ').slice(0, 200)})\n`;
      out += `${indent}${r.address}\n`;
    }
    out += '\n';
  }
  out += `-- ${Math.ceil(bytes / 1024)} Kbytes in ${entries.length} Request${entries.length === 1 ? '' : 's'}.\n`;
  return out + waiting;
}

export async function mailq(config: ClientConfig, json: boolean): Promise<number> {
  const entries = await fetchQueue(config);
  const inMaildrop = maildropCount(config.submission.maildrop);
  process.stdout.write(json ? JSON.stringify({ queue: entries, maildrop: inMaildrop }, null, 2) + '\n' : formatQueue(entries, inMaildrop));
  return EX.OK;
}
