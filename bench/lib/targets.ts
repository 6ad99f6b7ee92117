/** The two systems under test behind one interface: start relaying to an upstream port, stop, memory. */
import { join } from 'node:path';
import { freePort, memoryOf, PostfixInstance, processTree, sleep, startMailshim, waitForPort } from './procs.js';

/** Something that accepts SMTP on a port and relays to an upstream port. */
export interface Target {
  name: string;
  start(upstreamPort: number): Promise<number>;
  stop(): Promise<void>;
  /** Current RSS in kB (summed over processes for Postfix). */
  rssKb(): number;
  /** Peak RSS since start in kB, if the system tracks it; else undefined (sampled instead). */
  hwmKb(): number | undefined;
  rootPid(): number | undefined;
}

export function mailshimTarget(base: string): Target {
  let running: Awaited<ReturnType<typeof startMailshim>> | undefined;
  let n = 0;
  return {
    name: 'mailshim',
    async start(upstreamPort) {
      const port = await freePort();
      const dir = join(base, `mailshim-${++n}`);
      running = await startMailshim({ dir, port, upstreamPort, concurrency: 20 });
      return port;
    },
    async stop() {
      await running?.stop();
      running = undefined;
    },
    rssKb: () => (running ? memoryOf(running.pid).rssKb : 0),
    hwmKb: () => (running ? memoryOf(running.pid).hwmKb : undefined),
    rootPid: () => running?.pid,
  };
}

export function postfixTarget(base: string): Target {
  let instance: PostfixInstance | undefined;
  let n = 0;
  return {
    name: 'postfix',
    async start(upstreamPort) {
      const port = await freePort();
      instance = new PostfixInstance(join(base, `postfix-${++n}`), port, upstreamPort);
      instance.setup();
      instance.start();
      await waitForPort(port);
      return port;
    },
    async stop() {
      instance?.stop();
      // postfix stop returns before every child has exited; give them a moment.
      await sleep(1500);
      instance = undefined;
    },
    rssKb: () => {
      const pid = instance?.masterPid();
      if (!pid) return 0;
      return treeRss(pid);
    },
    hwmKb: () => undefined,
    rootPid: () => instance?.masterPid(),
  };
}

const treeRss = (pid: number) => processTree(pid).reduce((sum, p) => sum + memoryOf(p).rssKb, 0);
