/** One row of `SeatMap.breakdown`: seat use of one key (holder, user or department) on one UTC day. */
export interface SeatBucket {
  day: string;
  key: string | null;
  leases: number;
  secondsHeld: number;
  peakConcurrent: number;
}

export interface SeatKeyTotal {
  key: string | null;
  /** Leases granted in the period. */
  leases: number;
  secondsHeld: number;
  /** The highest daily peak: days are separate windows, so peaks are not added. */
  peakConcurrent: number;
  /** Seat time per day over the whole period, oldest first, zero on days without use. */
  perDay: { day: string; secondsHeld: number; leases: number }[];
}

/** The last `days` UTC days as YYYY-MM-DD, oldest first, ending today (the window the server reports). */
export function utcDays(days: number, now = new Date()): string[] {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: days }, (_, i) => new Date(today - (days - 1 - i) * 86_400_000).toISOString().slice(0, 10));
}

/** Per-key totals over the period, most seat time first (then most leases, then by key; "not reported" last). */
export function totalsByKey(buckets: readonly SeatBucket[], days: readonly string[]): SeatKeyTotal[] {
  const index = new Map(days.map((d, i) => [d, i]));
  const totals = new Map<string | null, SeatKeyTotal>();
  for (const b of buckets) {
    let t = totals.get(b.key);
    if (!t) {
      t = { key: b.key, leases: 0, secondsHeld: 0, peakConcurrent: 0, perDay: days.map((day) => ({ day, secondsHeld: 0, leases: 0 })) };
      totals.set(b.key, t);
    }
    t.leases += b.leases;
    t.secondsHeld += b.secondsHeld;
    t.peakConcurrent = Math.max(t.peakConcurrent, b.peakConcurrent);
    const slot = t.perDay[index.get(b.day) ?? -1];
    if (slot) {
      slot.secondsHeld += b.secondsHeld;
      slot.leases += b.leases;
    }
  }
  return [...totals.values()].sort(
    (a, b) =>
      b.secondsHeld - a.secondsHeld ||
      b.leases - a.leases ||
      (a.key === null ? 1 : 0) - (b.key === null ? 1 : 0) ||
      (a.key ?? '').localeCompare(b.key ?? ''),
  );
}
