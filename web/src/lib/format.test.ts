import { describe, expect, it } from 'vitest';
import { activationCaption, duration, relative } from './format';

describe('duration', () => {
  it('shows the two largest units and drops empty ones', () => {
    expect(duration(0)).toBe('0 s');
    expect(duration(45.4)).toBe('45 s');
    expect(duration(60)).toBe('1 min');
    expect(duration(12 * 60 + 59)).toBe('12 min');
    expect(duration(3 * 3600 + 20 * 60 + 5)).toBe('3 h 20 min');
    expect(duration(2 * 3600)).toBe('2 h');
    expect(duration(2 * 86_400 + 5 * 3600 + 59 * 60)).toBe('2 d 5 h');
    expect(duration(86_400 + 30 * 60)).toBe('1 d');
  });
});

describe('relative', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  const at = (seconds: number) => new Date(now + seconds * 1000).toISOString();
  const fmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

  it('says a moment ago as "just now", and counts the seconds of a moment ahead', () => {
    expect(relative(at(-10), now)).toBe('just now');
    expect(relative(at(0), now)).toBe('just now');
    expect(relative(at(3), now)).toBe('just now'); // a clock a little behind the server's
    expect(relative(at(10), now)).toBe(fmt.format(10, 'second'));
    expect(relative(at(10), now)).not.toBe('just now');
    expect(relative(at(-3 * 60), now)).toBe(fmt.format(-3, 'minute'));
    expect(relative(at(2 * 3600), now)).toBe(fmt.format(2, 'hour'));
    expect(relative(null, now)).toBe('never');
  });
});

describe('activationCaption', () => {
  it('says whether goodwill activations are ahead, available or in use', () => {
    expect(activationCaption(1, 2, 1)).toBe('1 left · 1 goodwill activation beyond the cap');
    expect(activationCaption(2, 2, 1)).toBe('None left · 1 goodwill activation available');
    expect(activationCaption(3, 2, 1)).toBe('1 goodwill activation in use · none left');
    expect(activationCaption(3, 2, 2)).toBe('1 goodwill activation in use · 1 more available');
    expect(activationCaption(4, 2, 2)).toBe('2 goodwill activations in use · none left');
  });

  it('reads without goodwill, without a cap, and over a cap lowered below the devices holding it', () => {
    expect(activationCaption(0, 3, 0)).toBe('3 left');
    expect(activationCaption(3, 3, 0)).toBe('None left');
    expect(activationCaption(5, null, 0)).toBe('No cap');
    expect(activationCaption(4, 3, 0)).toBe('1 over the cap');
    expect(activationCaption(5, 2, 1)).toBe('1 goodwill activation in use · none left · 2 over the goodwill');
  });
});
