/**
 * lmdb-js and failed commits. When a commit fails, lmdb-js rejects the promise of each write in
 * it with "Commit failed (see commitError for details)" and the LMDB cause in a second promise,
 * `error.commitError`. Two of these promises have no owner: `commitError` itself, and the commit
 * promise of lmdb-js's own event-turn batch (write.js, `writeBatchStart()`: its result is dropped).
 * Left alone, either one is an unhandled rejection and Node stops the process — the daemon died
 * on every ENOSPC. The caller of the write already gets the same failure (Spool.commit turns it
 * into a SpoolError), so these two copies are marked handled here, and nothing else is: any other
 * unhandled rejection is rethrown and still stops the process as Node would.
 */
let installed = false;

type CommitFailure = Error & { commitError?: Promise<unknown> };

export function isCommitFailure(reason: unknown): reason is CommitFailure {
  return reason instanceof Error && (reason as CommitFailure).commitError instanceof Promise;
}

/** Marks the `commitError` promise of a failed write handled; returns the cause once it settles. */
export function commitCause(error: unknown): Promise<unknown> | undefined {
  if (!isCommitFailure(error)) return undefined;
  const cause = error.commitError!.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  return cause;
}

export function ignoreOrphanCommitRejections(): void {
  if (installed) return;
  installed = true;
  // A handler attached from here comes too late for Node's current batch of rejections, so the
  // `commitError` promises met here are remembered and their own report is ignored too.
  const causes = new WeakSet<Promise<unknown>>();
  process.on('unhandledRejection', (reason, promise) => {
    if (causes.has(promise)) return;
    if (isCommitFailure(reason)) {
      causes.add(reason.commitError!);
      void commitCause(reason);
      return;
    }
    throw reason;
  });
}
