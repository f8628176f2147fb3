import { describe, expect, it } from 'vitest';
import { dayBars, dayIn } from './histogram';

describe('dayIn', () => {
  it('gives the calendar day of an instant in a time zone', () => {
    const at = new Date(Date.UTC(2026, 10, 23, 2, 30));
    expect(dayIn(at, 'UTC')).toBe('2026-11-23');
    expect(dayIn(at, 'America/New_York')).toBe('2026-11-22');
    expect(dayIn(at, 'Asia/Tokyo')).toBe('2026-11-23');
  });
});

describe('dayBars', () => {
  it('lays the counts out over the last N days of the zone, oldest first, zero-filled', () => {
    const now = new Date(Date.UTC(2026, 10, 23, 15, 0));
    const bars = dayBars({ '2026-11-23': 2, '2026-11-21': 1, '2026-11-01': 9 }, 3, 'UTC', now);
    expect(bars.map((d) => [d.label, d.value])).toEqual([
      ['11-21', 1],
      ['11-22', 0],
      ['11-23', 2],
    ]);
    // Across the start of a month, and at 15:00 UTC it is already the 24th in Tokyo.
    expect(dayBars({ '2026-11-24': 4 }, 2, 'Asia/Tokyo', new Date(Date.UTC(2026, 10, 23, 15, 0))).map((d) => [d.label, d.value])).toEqual([
      ['11-23', 0],
      ['11-24', 4],
    ]);
    expect(dayBars({}, 2, 'UTC', new Date(Date.UTC(2026, 11, 1, 1))).map((d) => d.label)).toEqual(['11-30', '12-01']);
  });
});
