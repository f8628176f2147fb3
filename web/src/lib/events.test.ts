import { describe as group, expect, it } from 'vitest';
import { describe, detail } from './events';

group('event labels', () => {
  it('names the compliance alerts readably', () => {
    expect(describe({ type: 'compliance.license_expiring' })).toBe('License expiring soon');
    expect(describe({ type: 'compliance.license_expired' })).toBe('License expired');
    expect(describe({ type: 'compliance.heartbeat_timeout' })).toBe('Device stopped checking in');
    expect(describe({ type: 'compliance.goodwill_used' })).toBe('Goodwill activation used');
    expect(describe({ type: 'compliance.threshold_crossed' })).toBe('Capacity threshold reached');
    expect(describe({ type: 'compliance.threshold_cleared' })).toBe('Back under a capacity threshold');
    expect(describe({ type: 'compliance.activation_denied' })).toBe('Activation refused: limit reached');
    expect(describe({ type: 'compliance.settings_updated' })).toBe('Alert settings changed');
    expect(describe({ type: 'compliance.thresholds_updated' })).toBe('Capacity thresholds changed');
    expect(describe({ type: 'activation.created' })).toBe('Device activated');
    expect(describe({ type: 'license.renewed' })).toBe('License renewed');
  });

  it('details how long is left, or the device', () => {
    expect(detail({ payload: { licenseId: 'l1', daysLeft: 7, leadDays: 7 } })).toBe('7 days left');
    expect(detail({ payload: { licenseId: 'l1', daysLeft: 1 } })).toBe('1 day left');
    expect(detail({ payload: { licenseId: 'l1', daysLeft: 0 } })).toBeNull();
    expect(detail({ payload: { activationId: 'a1', fingerprint: 'fp-1', hostname: 'build-7' } })).toBe('build-7');
    expect(detail({ payload: { holder: 'ann@acme.example', expiresAt: '2026-12-08T01:00:00.000Z' } })).toBe('ann@acme.example');
    expect(detail({ payload: { holder: 'ann@acme.example', reason: 'released_by_operator' } })).toBe('ann@acme.example, freed by an operator');
  });

  it('details thresholds and alert settings', () => {
    expect(detail({ payload: { metric: 'ACTIVATIONS', percent: 80, used: 4, cap: 5 } })).toBe('activations at 80%');
    expect(detail({ payload: { metric: 'SEATS', percents: [80, 100] } })).toBe('seats: 80%, 100%');
    expect(detail({ payload: { expiringLeadDays: [30, 7] } })).toBe('expiring-soon 30, 7 days before');
    expect(detail({ payload: { expiringLeadDays: [] } })).toBe('expiring-soon alerts off');
    expect(detail({ payload: { heartbeatTolerancePercent: 150 } })).toBe('heartbeat tolerance 150%');
    expect(detail({ payload: { expiringLeadDays: [1], heartbeatTolerancePercent: 50 } })).toBe('expiring-soon 1 day before; heartbeat tolerance 50%');
  });
});
