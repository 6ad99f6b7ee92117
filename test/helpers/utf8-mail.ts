/** 8-bit test mail. */

/** UTF-8 text as cron, PHP and git write it: declared 8bit with a charset that fits, an 8-bit Subject and display name. */
export function utf8Message(tag: string): Buffer {
  return Buffer.from(
    [
      'From: Jürgen Müller <cron@example.org>',
      'To: ops@example.net',
      `Subject: Grüße aus dem Rechenzentrum ☕ ${tag}`,
      'Date: Sat, 28 Nov 2026 03:00:00 +0000',
      `Message-ID: <${tag}@example.org>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=UTF-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Sicherung abgeschlossen: 1.234 Dateien, Größe 5,6 GB.',
      'Nächster Lauf: Sonntag — 日本語のテキストも大丈夫。',
      '',
    ].join('\r\n'),
    'utf8',
  );
}
