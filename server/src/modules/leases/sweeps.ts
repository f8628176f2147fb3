import type { AppDeps } from '../../context.ts';
import { sweepTickets } from '../metering/service.ts';
import { sweepLeases } from './service.ts';
import { logFailure } from '../security/log.ts';

export interface Sweeper {
  /** Runs both sweeps once (tests and `pnpm bench` call this directly). */
  runOnce(now?: Date): Promise<{ leases: number; tickets: number }>;
  stop(): Promise<void>;
}

/**
 * Expires lapsed leases and usage tickets every `everyMs`. Each sweep is a set of atomic
 * UPDATE ... RETURNING statements over rows claimed with FOR UPDATE SKIP LOCKED, so every instance
 * can run it at once; a run never overlaps the previous one on this instance.
 */
export function startSweeps(deps: AppDeps, everyMs = 5_000): Sweeper {
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const runOnce = async (now = new Date()) => {
    const [leases, tickets] = await Promise.all([sweepLeases(deps, now), sweepTickets(deps, now)]);
    return { leases, tickets };
  };
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = runOnce()
      .catch((err) => {
        if (!stopped) logFailure(deps, 'leases/metering: sweep failed', err);
      })
      .finally(() => (running = undefined));
  }, everyMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
