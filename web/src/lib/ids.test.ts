import { describe, expect, it } from 'vitest';
import { globalId, rawId } from './ids';

describe('ids', () => {
  const uuid = '9ab89285-ca57-47ac-a204-dc5693926afe';
  it('round-trips between raw and global ids', () => {
    const g = globalId('License', uuid);
    expect(atob(g)).toBe(`License:${uuid}`);
    expect(rawId(g)).toBe(uuid);
    expect(globalId('License', g)).toBe(g);
    expect(rawId(uuid)).toBe(uuid);
  });
});
