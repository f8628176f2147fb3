import { describe, expect, it } from 'vitest';
import { LiveTally, perDay } from './histogram';

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

describe('LiveTally', () => {
  it('keeps the events of its type after the feed dropped them, for its days only', () => {
    const now = Date.UTC(2026, 10, 23, 12);
    const at = (hoursAgo: number) => new Date(now - hoursAgo * 3_600_000).toISOString();
    const tally = new LiveTally('activation.created', 2);
    const window1 = [
      { id: '3', type: 'activation.created', occurredAt: at(1) },
      { id: '2', type: 'customer.created', occurredAt: at(2) },
      { id: '1', type: 'activation.created', occurredAt: at(47) },
    ];
    expect(tally.take(window1, now).map((e) => e.id)).toEqual(['3', '1']);
    // The feed moved on: the activations are out of it.
    expect(tally.take([{ id: '4', type: 'customer.created', occurredAt: at(0) }], now).map((e) => e.id)).toEqual(['3', '1']);
    // Two hours later the oldest is past the tally's two days.
    expect(tally.take([], now + 2 * 3_600_000).map((e) => e.id)).toEqual(['3']);
  });
});
