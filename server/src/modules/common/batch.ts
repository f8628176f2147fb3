/**
 * Coalesces concurrent calls into batches, each run as one database statement.
 *
 * Under load the cost of a client call is dominated by per-statement work (a round trip, a parse,
 * a commit with its WAL flush), not by the rows it touches. While fewer than `maxInFlight` batches
 * run, a call starts a batch at once (after the current tick, so calls arriving together share it):
 * a lone caller waits for nothing. When every slot is busy, calls queue and the next free slot takes
 * up to `maxBatch` of them in one statement, so throughput grows with load instead of the queue.
 *
 * `run` answers each item in order, with a value or an Error for that item alone; a rejected `run`
 * (the database is down) fails every item of the batch.
 */
export interface BatchOptions {
  maxBatch?: number;
  maxInFlight?: number;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

export type Batched<I, O> = (item: I) => Promise<O>;

export function batched<I, O>(run: (items: I[]) => Promise<(O | Error)[]>, options: BatchOptions = {}): Batched<I, O> {
  const maxBatch = options.maxBatch ?? 200;
  const maxInFlight = options.maxInFlight ?? 4;
  let queue: Pending<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;

  const start = (batch: Pending<I, O>[]) => {
    inFlight++;
    let results: Promise<(O | Error)[]>;
    try {
      results = run(batch.map((p) => p.item));
    } catch (err) {
      results = Promise.reject(err);
    }
    results
      .then(
        (out) => {
          batch.forEach((p, i) => {
            const r = out[i];
            if (r instanceof Error) p.reject(r);
            else if (r === undefined) p.reject(new Error('batch returned no result for an item'));
            else p.resolve(r);
          });
        },
        (err) => {
          for (const p of batch) p.reject(err);
        },
      )
      .finally(() => {
        inFlight--;
        flush();
      });
  };

  const flush = () => {
    scheduled = false;
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
      start(batch);
    }
  };

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      if (!scheduled && inFlight < maxInFlight) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}

/**
 * Statements of one kind in flight per process. A write's cost on PostgreSQL is mostly per statement
 * (its commit and WAL flush, the plan of a long CTE), so writes run one at a time and each takes every
 * call that queued meanwhile: measured on PostgreSQL with 16 clients, one in flight instead of two made
 * batches of about 8 calls instead of 5 and took a sixth to a quarter off PostgreSQL's CPU per heartbeat,
 * activation and checkout. A read commits nothing and costs mostly per row, so two reads overlap
 * (their round trips) instead. PGlite has one connection anyway.
 */
export function inFlightFor(kind: 'postgres' | 'pglite', access: 'read' | 'write'): number {
  return kind === 'postgres' && access === 'read' ? 2 : 1;
}

/** One set of batchers per app (database), created on first use. */
export function perApp<K extends object, V>(make: (key: K) => V): (key: K) => V {
  const cache = new WeakMap<K, V>();
  return (key) => {
    let v = cache.get(key);
    if (!v) {
      v = make(key);
      cache.set(key, v);
    }
    return v;
  };
}

/**
 * Runs `run` on the items in rounds in which no key appears twice (the first call of each key, then
 * the second, ...), one after the other, and answers in the items' order. For statements that write one
 * row per key: PostgreSQL updates a row once per statement, so a second call of the same key in one
 * statement would be answered without being recorded.
 */
export async function inDistinctRounds<I, O>(items: I[], keyOf: (item: I) => string, run: (items: I[]) => Promise<O[]>): Promise<O[]> {
  const seen = new Map<string, number>();
  const rounds: number[][] = [];
  items.forEach((item, i) => {
    const key = keyOf(item);
    const round = seen.get(key) ?? 0;
    seen.set(key, round + 1);
    (rounds[round] ??= []).push(i);
  });
  if (rounds.length === 1) return run(items);
  const out = new Array<O>(items.length);
  for (const round of rounds) {
    const results = await run(round.map((i) => items[i]!));
    round.forEach((i, k) => (out[i] = results[k]!));
  }
  return out;
}
