import { describe, expect, it } from 'vitest';
import { disabledNote, everyEvent } from './webhooks';

describe('disabledNote', () => {
  const when = (iso: string) => iso.slice(0, 10);
  const auto = { enabled: false, disabledReason: 'DELIVERY_FAILURES', disabledAt: '2026-12-07T20:00:00.000Z' };

  it('says how many deliveries failed in a row, and when', () => {
    expect(disabledNote({ ...auto, consecutiveFailures: 10 }, when)).toBe('Disabled automatically after 10 failed deliveries on 2026-12-07');
    expect(disabledNote({ ...auto, consecutiveFailures: 1 }, when)).toBe('Disabled automatically after 1 failed delivery on 2026-12-07');
  });

  it('does not say "0 failed deliveries" once the URL changed (which starts the count again)', () => {
    expect(disabledNote({ ...auto, consecutiveFailures: 0 }, when)).toBe('Disabled automatically after failed deliveries to its previous URL on 2026-12-07');
  });

  it('is null while enabled, and plain when disabled by hand', () => {
    expect(disabledNote({ enabled: true, consecutiveFailures: 2 }, when)).toBeNull();
    expect(disabledNote({ enabled: false, disabledReason: 'MANUAL', disabledAt: auto.disabledAt, consecutiveFailures: 0 }, when)).toBe('Disabled on 2026-12-07');
  });
});

describe('everyEvent', () => {
  it('is the server\'s rule: an empty list or one with "*"', () => {
    expect(everyEvent([])).toBe(true);
    expect(everyEvent(['*'])).toBe(true);
    expect(everyEvent(['license.*'])).toBe(false);
  });
});
