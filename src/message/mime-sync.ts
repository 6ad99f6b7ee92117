/**
 * Serialises a nodemailer MimeNode tree synchronously. nodemailer composes the message — header
 * encoding and folding, the multipart boundary, the choice of Content-Transfer-Encoding — but
 * its build() only streams (through setImmediate), and notices (DSNs) are built inside the
 * spool's write transaction, which lmdb-js runs synchronously (a bounce is committed in the same
 * transaction as the outcome that causes it, so it is never lost nor sent twice). This walks the
 * same tree the way MimeNode.stream() writes it, with nodemailer's own synchronous encoders; a
 * test checks the result byte for byte against build().
 *
 * Only what notices use: content given as a string or Buffer (no streams, files or URLs).
 */
import { encode as base64Encode, wrap as base64Wrap } from 'nodemailer/lib/base64';
import type MimeNode from 'nodemailer/lib/mime-node';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';

export function buildMimeSync(node: MimeNode): Buffer {
  const chunks: Buffer[] = [];
  write(node, chunks);
  return Buffer.concat(chunks);
}

function write(node: MimeNode, out: Buffer[]): void {
  out.push(Buffer.from(node.buildHeaders() + '\r\n\r\n', 'utf8'));
  const content = node.content;
  if (content !== undefined) {
    if (typeof content !== 'string' && !Buffer.isBuffer(content)) throw new TypeError('buildMimeSync: only string or Buffer content');
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    const encoding = node.getTransferEncoding();
    if (encoding === 'base64') out.push(Buffer.from(base64Wrap(base64Encode(bytes), 76)));
    else if (encoding === 'quoted-printable') out.push(Buffer.from(qpWrap(qpEncode(bytes), 76)));
    else out.push(bytes);
  }
  if (!node.multipart) return;
  node.childNodes.forEach((child, i) => {
    out.push(Buffer.from(`${i > 0 ? '\r\n' : ''}--${String(node.boundary)}\r\n`));
    write(child, out);
  });
  out.push(Buffer.from(`\r\n--${String(node.boundary)}--\r\n`));
}
