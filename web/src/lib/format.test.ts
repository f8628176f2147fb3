import { describe, expect, it } from 'vitest';
import { duration } from './format';

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
