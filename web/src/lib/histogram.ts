/** Counts per local day for the last `days` days, oldest first, labelled "MM-DD". */
export function perDay(events: readonly { occurredAt: string }[], days: number, now = new Date()): { label: string; value: number; title: string }[] {
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (days - 1));
  const buckets = Array.from({ length: days }, (_, i) => {
    const d = new Date(start.getFullYear(), start.getMonth(), start.getDate() + i);
    return { date: d, value: 0 };
  });
  for (const e of events) {
    const t = new Date(e.occurredAt);
    const index = Math.floor((new Date(t.getFullYear(), t.getMonth(), t.getDate()).getTime() - start.getTime()) / 86_400_000 + 0.5);
    const bucket = buckets[index];
    if (bucket) bucket.value += 1;
  }
  return buckets.map(({ date, value }) => {
    const label = `${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
    return { label, value, title: `${date.toDateString()}: ${value} activation${value === 1 ? '' : 's'}` };
  });
}

/**
 * The events of one type that a live feed brought, kept for `days` days: a feed shows only its newest
 * few events, and a chart of the last days must not lose one that scrolled out of it.
 */
export class LiveTally {
  #seen = new Map<string, { id: string; occurredAt: string }>();
  constructor(
    private readonly type: string,
    private readonly days: number,
  ) {}

  /** Takes those of `events` of the type; returns all kept, without those older than `days` days. */
  take(events: readonly { id: string; type: string; occurredAt: string }[], now = Date.now()): { id: string; occurredAt: string }[] {
    for (const e of events) if (e.type === this.type && !this.#seen.has(e.id)) this.#seen.set(e.id, { id: e.id, occurredAt: e.occurredAt });
    const oldest = now - this.days * 86_400_000;
    for (const [id, e] of this.#seen) if (Date.parse(e.occurredAt) < oldest) this.#seen.delete(id);
    return [...this.#seen.values()];
  }
}
