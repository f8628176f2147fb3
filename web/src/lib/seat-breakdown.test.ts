import { describe, expect, it } from 'vitest';
import { totalsByKey, utcDays, type SeatBucket } from './seat-breakdown';

const bucket = (day: string, key: string | null, leases: number, secondsHeld: number, peakConcurrent: number): SeatBucket => ({
  day,
  key,
  leases,
  secondsHeld,
  peakConcurrent,
});

describe('utcDays', () => {
  it('lists the last N UTC days ending today, oldest first', () => {
    // 23:30 in UTC-5 is already the next day in UTC.
    expect(utcDays(3, new Date('2026-03-01T04:30:00Z'))).toEqual(['2026-02-27', '2026-02-28', '2026-03-01']);
    expect(utcDays(1, new Date('2026-03-01T00:00:00Z'))).toEqual(['2026-03-01']);
  });
});

describe('totalsByKey', () => {
  const days = ['2026-05-01', '2026-05-02', '2026-05-03'];

  it('adds leases and seat time, keeps the highest daily peak, and spreads seat time over the days', () => {
    const totals = totalsByKey(
      [
        bucket('2026-05-03', 'Design', 2, 600, 2),
        bucket('2026-05-03', 'Finance', 1, 7200, 1),
        bucket('2026-05-01', 'Design', 3, 1800, 3),
        bucket('2026-05-02', 'Design', 0, 300, 1),
      ],
      days,
    );
    expect(totals.map((t) => [t.key, t.leases, t.secondsHeld, t.peakConcurrent])).toEqual([
      ['Finance', 1, 7200, 1],
      ['Design', 5, 2700, 3],
    ]);
    expect(totals[1]?.perDay).toEqual([
      { day: '2026-05-01', secondsHeld: 1800, leases: 3 },
      { day: '2026-05-02', secondsHeld: 300, leases: 0 },
      { day: '2026-05-03', secondsHeld: 600, leases: 2 },
    ]);
  });

  it('keeps leases without a key as their own row, after named keys on ties', () => {
    const totals = totalsByKey([bucket('2026-05-02', null, 1, 60, 1), bucket('2026-05-02', 'Ops', 1, 60, 1), bucket('2026-05-02', 'Eng', 1, 60, 1)], days);
    expect(totals.map((t) => t.key)).toEqual(['Eng', 'Ops', null]);
  });

  it('ignores buckets outside the days asked for in the per-day view but counts them in the totals', () => {
    const [t] = totalsByKey([bucket('2026-04-30', 'Ops', 1, 60, 1)], days);
    expect(t?.secondsHeld).toBe(60);
    expect(t?.perDay.every((d) => d.secondsHeld === 0)).toBe(true);
  });

  it('is empty without buckets', () => {
    expect(totalsByKey([], days)).toEqual([]);
  });
});
