import { describe, expect, it } from 'vitest';
import { entitlement, entitlementsOf, isEntitled, limitOf } from '../src/entitlements.ts';

describe('entitlement helpers', () => {
  const claims = { features: ['export'], entitlements: [{ limit: 10, feature: 'projects' }, { feature: 'api', limit: 0 }] };

  it('read limits from a LicenseInfo, a payload or a verified document alike', () => {
    for (const source of [claims, { payload: claims }]) {
      expect(limitOf(source, 'projects')).toBe(10);
      expect(limitOf(source, 'export')).toBeNull();
      expect(entitlement(source, 'api')).toEqual({ feature: 'api', limit: 0 });
      expect(entitlementsOf(source)).toEqual([{ feature: 'projects', limit: 10 }, { feature: 'api', limit: 0 }]);
    }
  });

  it('apply the server rule: limit above 0 and at least the quantity; on/off features have no limit', () => {
    expect(isEntitled(claims, 'projects')).toBe(true);
    expect(isEntitled(claims, 'projects', 10)).toBe(true);
    expect(isEntitled(claims, 'projects', 11)).toBe(false);
    expect(isEntitled(claims, 'api')).toBe(false);
    expect(isEntitled(claims, 'export', 1000)).toBe(true);
    expect(isEntitled(claims, 'render')).toBe(false);
  });

  it('ignore malformed claims (old tokens without entitlements, wrong shapes)', () => {
    expect(entitlementsOf({ features: ['export'] })).toEqual([]);
    expect(entitlementsOf({ entitlements: 'projects=3' })).toEqual([]);
    expect(entitlementsOf({ entitlements: [{ feature: 'a', limit: -1 }, { feature: 'b', limit: 1.5 }, { feature: 3, limit: 1 }, null] })).toEqual([]);
  });
});
