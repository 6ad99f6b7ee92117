/** Replies that carry their own enhanced status code (see smtp-server-adapter.ts for why that works). */
/** An error smtp-server turns into a reply: `code enhanced text`. */
export class SmtpReply extends Error {
  readonly responseCode: number;
  constructor(code: number, enhanced: string, text: string) {
    super(`${enhanced} ${text}`);
    this.responseCode = code;
  }
}
