/** The one header/body splitter (message/headers.ts headerBlock), used by intake, delivery, the CLI and sendmail. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headerBlock, splitHeaders } from '../src/message/headers.js';

const block = (text: string, stop = false) => headerBlock(Buffer.from(text, 'latin1'), stop);

describe('headerBlock', () => {
  it('ends after the first empty line, CRLF or bare LF, and says so', () => {
    assert.deepEqual(block('A: 1\r\nB: 2\r\n\r\nbody\r\n'), { end: 14, separated: true });
    assert.deepEqual(block('A: 1\nB: 2\n\nbody\n'), { end: 11, separated: true });
    assert.deepEqual(block('A: 1\r\n\nbody'), { end: 7, separated: true });
    assert.deepEqual(block('A: 1\n\r\nbody'), { end: 7, separated: true });
  });

  it('an empty first line: no header at all; no empty line: all header', () => {
    assert.deepEqual(block('\r\nbody'), { end: 2, separated: true });
    assert.deepEqual(block('\nbody'), { end: 1, separated: true });
    assert.deepEqual(block('A: 1\r\nB: 2'), { end: 10, separated: false });
    assert.deepEqual(block(''), { end: 0, separated: false });
  });

  it('continuation lines belong to the header; only a blank line ends it unless asked', () => {
    assert.deepEqual(block('Subject: a\r\n folded\r\nnot a header\r\n\r\nbody'), { end: 37, separated: true });
  });

  it('stopAtNonHeader: the first line that is neither a field nor a continuation starts the body', () => {
    assert.deepEqual(block('Subject: a\r\n folded\r\nnot a header\r\n\r\nbody', true), { end: 21, separated: false });
    assert.deepEqual(block(' leading space\r\n', true), { end: 0, separated: false }, 'a continuation needs a field to continue');
    assert.deepEqual(block('Subject : spaced\r\n', true), { end: 0, separated: false }, 'no space before the colon (RFC 5322 §2.2)');
    assert.deepEqual(block('X-Odd_Name!: ok\r\n\r\n', true), { end: 19, separated: true });
  });

  it('splitHeaders keeps the blank line with the header and the body byte for byte', () => {
    const message = Buffer.from('A: 1\r\n\r\n\x00\xff body\r\n', 'latin1');
    const { header, body } = splitHeaders(message);
    assert.equal(header, 'A: 1\r\n\r\n');
    assert.deepEqual(body, message.subarray(8));
  });
});
