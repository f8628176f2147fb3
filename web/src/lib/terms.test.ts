import { describe, expect, it } from 'vitest';
import { changedTerms, draftFrom, emptyDraft, looksLikeSemverRange, termsInput, validateTerms } from './terms';

const catalogue = { features: new Set(['export', 'sso']), meters: new Set(['api-calls']) };

describe('validateTerms mirrors the server rules', () => {
  it('accepts a plain subscription', () => {
    expect(validateTerms(emptyDraft('SUBSCRIPTION'), catalogue)).toEqual({});
  });

  it('checks number ranges and shapes', () => {
    const d = { ...emptyDraft(), validityDays: '0', maxActivations: '1.5', heartbeatSeconds: '5', leaseSeconds: '', goodwillActivations: '-1' };
    const e = validateTerms(d, catalogue);
    expect(e.validityDays).toBe('must be at least 1');
    expect(e.maxActivations).toBe('must be a whole number');
    expect(e.heartbeatSeconds).toBe('must be at least 10');
    expect(e.goodwillActivations).toBe('must not be negative');
  });

  it('applies the cross-field rules on the field to fix', () => {
    expect(validateTerms({ ...emptyDraft(), seats: '5' }).seats).toMatch(/FLOATING provisioning only/);
    expect(validateTerms({ ...emptyDraft(), provisioning: 'FLOATING' }).seats).toBe('FLOATING provisioning needs a number of seats');
    expect(validateTerms({ ...emptyDraft('FLOATING'), seats: '3' }).provisioning).toMatch(/needs FLOATING provisioning/);
    expect(validateTerms({ ...emptyDraft(), goodwillActivations: '2' }).goodwillActivations).toMatch(/maxActivations cap/);
    expect(validateTerms({ ...emptyDraft('NODE_LOCKED'), maxActivations: '2' }).maxActivations).toMatch(/exactly one device/);
    expect(validateTerms({ ...emptyDraft('PERPETUAL'), validityDays: '30' }).validityDays).toMatch(/does not expire/);
    expect(validateTerms({ ...emptyDraft(), heartbeatSeconds: '600', inactivityReclaimSeconds: '300' }).inactivityReclaimSeconds).toMatch(
      /at least heartbeatSeconds/,
    );
    expect(validateTerms({ ...emptyDraft(), deploymentMode: 'OFFLINE', allowOffline: false }).allowOffline).toMatch(/offline activation allowed/);
    expect(validateTerms({ ...emptyDraft('TRIAL'), gracePeriodSeconds: '3600' }).gracePeriodSeconds).toMatch(/SUBSCRIPTION licenses only/);
    expect(validateTerms({ ...emptyDraft('SUBSCRIPTION'), gracePeriodSeconds: '604800' }).gracePeriodSeconds).toBeUndefined();
    expect(validateTerms({ ...emptyDraft('SUBSCRIPTION'), gracePeriodSeconds: '40000000' }).gracePeriodSeconds).toBe('must be at most 365 days');
  });

  it('checks features and meters against the product, with server paths', () => {
    const d = {
      ...emptyDraft(),
      features: ['export', 'nope', 'export'],
      meters: [
        { meter: 'api-calls', quota: '10', period: 'MONTH' as const },
        { meter: 'api-calls', quota: 'x', period: 'DAY' as const },
      ],
    };
    const e = validateTerms(d, catalogue);
    expect(e['features.1']).toBe('unknown feature "nope" for this product');
    expect(e['features.2']).toBe('feature "export" is listed twice');
    expect(e['meters.1.meter']).toBe('meter "api-calls" is listed twice');
    expect(e['meters.1.quota']).toBe('must be a whole number');
    expect(e['meters.0.meter']).toBeUndefined();
  });

  it('checks numeric entitlements like the server: known, once, not also on/off, whole non-negative limits', () => {
    const d = {
      ...emptyDraft(),
      features: ['export'],
      entitlements: [
        { feature: 'sso', limit: '5' },
        { feature: 'sso', limit: '-1' },
        { feature: 'export', limit: '1.5' },
        { feature: 'nope', limit: '' },
        { feature: '', limit: '2147483648' },
      ],
    };
    const e = validateTerms(d, catalogue);
    expect(e['entitlements.0.feature']).toBeUndefined();
    expect(e['entitlements.0.limit']).toBeUndefined();
    expect(e['entitlements.1.feature']).toBe('feature "sso" is listed twice');
    expect(e['entitlements.1.limit']).toBe('must not be negative');
    expect(e['entitlements.2.feature']).toMatch(/also an on\/off feature/);
    expect(e['entitlements.2.limit']).toBe('must be a whole number');
    expect(e['entitlements.3.feature']).toBe('unknown feature "nope" for this product');
    expect(e['entitlements.3.limit']).toBe('must not be empty');
    expect(e['entitlements.4.feature']).toBe('choose a feature');
    expect(e['entitlements.4.limit']).toBe('must be at most 2147483647');
    const many = Array.from({ length: 101 }, (_, i) => ({ feature: `f${i}`, limit: '1' }));
    expect(validateTerms({ ...emptyDraft(), entitlements: many }).entitlements).toBe('at most 100 entitlements');
  });

  it('recognises semver ranges', () => {
    for (const ok of ['>=2.0.0 <3.0.0', '^1.2', '~1.2.3', '1.x', '*', '1.0.0 - 2.0.0', '>= 1.0.0', '^1 || ^2']) expect(looksLikeSemverRange(ok), ok).toBe(true);
    for (const bad of ['banana', '>=2.0.0 <', '1..2', '||']) expect(looksLikeSemverRange(bad), bad).toBe(false);
    expect(validateTerms({ ...emptyDraft(), allowedVersions: 'banana' }).allowedVersions).toBe('"banana" is not a semver range');
  });
});

describe('terms input', () => {
  it('converts a draft to GraphQL input', () => {
    const input = termsInput({ ...emptyDraft(), maxActivations: ' 3 ', allowedVersions: '  ', meters: [{ meter: 'api-calls', quota: '10', period: 'DAY' }] });
    expect(input.maxActivations).toBe(3);
    expect(input.validityDays).toBe(365);
    expect(input.seats).toBeNull();
    expect(input.allowedVersions).toBeNull();
    expect(input.meters).toEqual([{ meter: 'api-calls', quota: 10, period: 'DAY' }]);
    expect(termsInput({ ...emptyDraft(), entitlements: [{ feature: ' sso ', limit: '7' }] }).entitlements).toEqual([{ feature: 'sso', limit: 7 }]);
  });

  it('sends only what a license overrides of its edition', () => {
    const edition = draftFrom({ ...termsInput(emptyDraft()), features: ['export'] });
    const license = { ...structuredClone(edition), maxActivations: '10', features: ['export', 'sso'] };
    expect(changedTerms(termsInput(license), termsInput(edition))).toEqual({ maxActivations: 10, features: ['export', 'sso'] });
    const limited = { ...structuredClone(edition), entitlements: [{ feature: 'sso', limit: '3' }] };
    expect(changedTerms(termsInput(limited), termsInput(edition))).toEqual({ entitlements: [{ feature: 'sso', limit: 3 }] });
  });

  it('an edition loaded into the form and saved untouched sends no term; a cleared number is sent as null', () => {
    const stored = {
      ...termsInput(emptyDraft()),
      maxActivations: 3,
      heartbeatSeconds: 3600,
      features: ['export'],
      entitlements: [{ feature: 'projects', limit: 10 }],
      meters: [{ meter: 'renders', quota: 100, period: 'MONTH' as const }],
      allowedVersions: '>=2.0.0',
    };
    const draft = draftFrom(stored);
    expect(changedTerms(termsInput(draft), stored)).toEqual({});
    expect(changedTerms(termsInput({ ...draft, heartbeatSeconds: '' }), stored)).toEqual({ heartbeatSeconds: null });
  });
});
