/**
 * SMTP smuggling defence (CVE-2023-51764 class): a line ending that is not CRLF inside DATA is how a
 * second message is hidden in the first, for receivers that accept "\n.\n" as end-of-data.
 * smtp-server itself only ends DATA on "\r\n.\r\n", so such bytes reach us inside the message;
 * we refuse the message outright rather than relay bytes another MTA could split differently.
 * Returns the offset of the first bare CR or bare LF, or -1.
 */
export function findBareLineBreak(data: Buffer): number {
  let lf = data.indexOf(0x0a);
  let cr = data.indexOf(0x0d);
  while (lf !== -1 || cr !== -1) {
    if (cr !== -1 && (lf === -1 || cr < lf)) {
      if (data[cr + 1] !== 0x0a) return cr;
      lf = data.indexOf(0x0a, cr + 2);
      cr = data.indexOf(0x0d, cr + 2);
    } else {
      // lf comes first and is not preceded by CR (that case is consumed above)
      return lf;
    }
  }
  return -1;
}
