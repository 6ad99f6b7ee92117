// The sendmail-compatible entry (src/cli/sendmail.ts) for bin/sendmail, mailq and newaliases.
// Loads dist/src/cli/sendmail.bundle.js, the hot path bundled into one file at build time
// (scripts/bundle-sendmail.mjs; one module to resolve and compile instead of ~14, for cron's
// start-up time), and falls back to the plain modules when a build made without esbuild has none.
export async function runSendmail(invokedAs) {
  let entry;
  try {
    entry = await import('../dist/src/cli/sendmail.bundle.js');
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('sendmail.bundle.js')) throw error;
    entry = await import('../dist/src/cli/sendmail.js');
  }
  entry.run(process.argv.slice(2), invokedAs);
}
