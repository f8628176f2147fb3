import { describe, expect, it } from 'vitest';
import { globalId, nodeId, rawId } from './ids';

describe('ids', () => {
  const uuid = '9ab89285-ca57-47ac-a204-dc5693926afe';
  it('round-trips between raw and global ids', () => {
    const g = globalId('License', uuid);
    expect(atob(g)).toBe(`License:${uuid}`);
    expect(rawId(g)).toBe(uuid);
    expect(globalId('License', g)).toBe(g);
    expect(rawId(uuid)).toBe(uuid);
  });

  it("reads a detail page's id as one of its type, or as none", () => {
    const license = globalId('License', uuid);
    expect(nodeId('License', license)).toBe(license);
    expect(nodeId('License', uuid)).toBe(license);
    expect(nodeId('License', uuid.toUpperCase())).toBe(globalId('License', uuid.toUpperCase()));
    for (const bad of ['garbage', '', uuid.slice(0, 20), btoa(`License:${uuid.slice(0, 20)}`), btoa(`Foo:${uuid}`), globalId('Customer', uuid), btoa('License'), '%%%']) {
      expect(nodeId('License', bad), bad).toBeNull();
    }
  });
});
