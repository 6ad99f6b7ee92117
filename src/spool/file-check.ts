/**
 * Checks queue.mdb before LMDB maps it. LMDB trusts its file: a truncated file makes it touch
 * pages past the end of the mapping (SIGBUS), a zeroed meta page sends it through a null root
 * (SIGSEGV), and both kill the process with no message. So the two meta pages are read with
 * plain reads first and the file is refused, with a message an operator can act on, unless both
 * carry LMDB's magic and the file holds every page the newer one names.
 *
 * Layout (lmdb-js 3.x, LMDB's mdb.c with lmdb-js's page header): page 0 and page 1 are meta
 * pages; a page starts with a 24-byte header (flags at byte 18, P_META = 0x08); the MDB_meta
 * follows: magic (u32) at +0, version (u32) at +4, the free-list MDB_db at +24 whose first field
 * (md_pad) holds the page size, mm_last_pg (u64) at +120 and mm_txnid (u64) at +128.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const HEADER = 24;
const P_META = 0x08;
const MDB_MAGIC = 0xbeefc0de;
const OFF_MAGIC = HEADER + 0;
const OFF_VERSION = HEADER + 4;
const OFF_PSIZE = HEADER + 24;
const OFF_LAST_PG = HEADER + 120;
const OFF_TXNID = HEADER + 128;
const MIN_PAGE = 512;
const MAX_PAGE = 65536;

export interface MetaPage {
  page: number;
  version: number;
  pageSize: number;
  lastPage: number;
  txnId: number;
}

/** A description of what is wrong with the file, or undefined when LMDB can safely open it. */
export function spoolFileProblem(file: string): string | undefined {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return `${file} is empty (0 bytes): an LMDB file always has two meta pages, so this is not an empty queue but a lost one`;
    const first = Buffer.alloc(Math.min(size, MAX_PAGE * 2));
    readSync(fd, first, 0, first.length, 0);
    const meta0 = readMeta(first, 0, 0);
    if (typeof meta0 === 'string') return `${file}: meta page 0 ${meta0}`;
    if (size < meta0.pageSize * 2) return `${file} is truncated: ${size} bytes, shorter than its two ${meta0.pageSize}-byte meta pages`;
    const meta1 = readMeta(first, 1, meta0.pageSize);
    if (typeof meta1 === 'string') return `${file}: meta page 1 ${meta1}`;
    // LMDB uses the meta page with the higher transaction id; every page it names must exist.
    const newest = meta1.txnId > meta0.txnId ? meta1 : meta0;
    const needed = (newest.lastPage + 1) * newest.pageSize;
    if (size < needed) return `${file} is truncated: ${size} bytes, but transaction ${newest.txnId} uses pages up to ${newest.lastPage} (${needed} bytes)`;
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function readMeta(buf: Buffer, page: number, pageSize: number): MetaPage | string {
  const at = page * pageSize;
  if (buf.length < at + OFF_TXNID + 8) return 'is cut short';
  const flags = buf.readUInt16LE(at + 18);
  const magic = buf.readUInt32LE(at + OFF_MAGIC);
  if (!(flags & P_META) || magic !== MDB_MAGIC) return `is not an LMDB meta page (magic ${magic.toString(16)}, flags ${flags.toString(16)}): overwritten or zeroed`;
  const psize = buf.readUInt32LE(at + OFF_PSIZE);
  if (psize < MIN_PAGE || psize > MAX_PAGE || (psize & (psize - 1)) !== 0) return `names an impossible page size ${psize}`;
  // Meta page 0 sets the page size (the caller passes 0 for it); page 1 must agree.
  if (page !== 0 && psize !== pageSize) return `disagrees with meta page 0 on the page size (${psize} vs ${pageSize})`;
  return {
    page,
    version: buf.readUInt32LE(at + OFF_VERSION),
    pageSize: psize,
    lastPage: Number(buf.readBigUInt64LE(at + OFF_LAST_PG)),
    txnId: Number(buf.readBigUInt64LE(at + OFF_TXNID)),
  };
}
