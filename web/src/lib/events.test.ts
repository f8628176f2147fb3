import { describe as group, expect, it } from 'vitest';
import { describe, detail } from './events';

group('event labels', () => {
  it('names the compliance alerts readably', () => {
    expect(describe({ type: 'compliance.license_expiring' })).toBe('License expiring soon');
    expect(describe({ type: 'compliance.license_expired' })).toBe('License expired');
    expect(describe({ type: 'compliance.heartbeat_timeout' })).toBe('Device stopped checking in');
    expect(describe({ type: 'compliance.goodwill_used' })).toBe('Compliance goodwill used');
    expect(describe({ type: 'activation.created' })).toBe('Device activated');
    expect(describe({ type: 'license.renewed' })).toBe('License renewed');
  });

  it('details how long is left, or the device', () => {
    expect(detail({ payload: { licenseId: 'l1', daysLeft: 7, leadDays: 7 } })).toBe('7 days left');
    expect(detail({ payload: { licenseId: 'l1', daysLeft: 1 } })).toBe('1 day left');
    expect(detail({ payload: { licenseId: 'l1', daysLeft: 0 } })).toBeNull();
    expect(detail({ payload: { activationId: 'a1', fingerprint: 'fp-1', hostname: 'build-7' } })).toBe('build-7');
  });
});
