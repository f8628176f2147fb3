import { describe, expect, it } from 'vitest';
import { perDay } from './histogram';

describe('perDay', () => {
  it('counts events into the last N local days, oldest first, zero-filled', () => {
    const now = new Date(2026, 10, 23, 15, 0);
    const at = (d: number, h = 10) => new Date(2026, 10, d, h).toISOString();
    const days = perDay([{ occurredAt: at(23) }, { occurredAt: at(23, 1) }, { occurredAt: at(21) }, { occurredAt: at(1) }], 3, now);
    expect(days.map((d) => [d.label, d.value])).toEqual([
      ['11-21', 1],
      ['11-22', 0],
      ['11-23', 2],
    ]);
  });
});
