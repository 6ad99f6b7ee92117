/**
 * CPU time accounting for the comparison benches, from /proc (USER_HZ is 100 on Linux, so every
 * figure here has a 10 ms grain: use them over runs of seconds, not per message).
 *
 * Postfix runs as a dozen short-lived processes (smtpd, cleanup, qmgr, smtp, trivial-rewrite, …)
 * that no single /proc entry adds up, so the fair per-message figure for both systems is the
 * machine's busy time over a run minus what the load generator itself used: smtp-source (a child
 * of the bench, counted once it is reaped) and smtp-sink (a long-running child, read directly).
 * That difference only means something on an otherwise idle machine; the bench prints the load.
 */
import { readFileSync } from 'node:fs';
import { cpuMsOf, statFields } from './procs.js';

/** Milliseconds all CPUs have spent busy since boot (user, nice, system, irq, softirq, steal). */
function machineBusyMs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
  return (user + nice + system + irq + softirq + steal) * 10;
}

/** CPU time (ms) of this process's children that have exited and been reaped (cutime + cstime: fields 16, 17). */
function reapedChildrenCpuMs(): number {
  const fields = statFields('/proc/self/stat');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** Starts a measurement; `stop()` gives the machine's busy time and the generator's share over it. */
export function cpuMeter(sinkPid: number): { stop(): { machineMs: number; generatorMs: number } } {
  const machine0 = machineBusyMs();
  const generator0 = reapedChildrenCpuMs() + cpuMsOf(sinkPid);
  return {
    stop() {
      return { machineMs: machineBusyMs() - machine0, generatorMs: reapedChildrenCpuMs() + cpuMsOf(sinkPid) - generator0 };
    },
  };
}
