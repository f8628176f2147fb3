import type { ActivityEvent } from './activity-manager.svelte';

const VERBS: Record<string, string> = {
  created: 'created',
  updated: 'updated',
  renewed: 'renewed',
  suspended: 'suspended',
  reinstated: 'reinstated',
  revoked: 'revoked',
  released: 'released',
  expired: 'expired',
  rotated: 'rotated',
  deactivated: 'deactivated',
  heartbeat: 'checked in',
  imported: 'imported',
};

/** Events whose dotted name does not read well on its own. */
const LABELS: Record<string, string> = {
  'activation.created': 'Device activated',
  'activation.released': 'Device released',
  'activation.deactivated': 'Device deactivated',
  'activation.deactivation_imported': 'Deactivation file imported',
  'compliance.license_expiring': 'License expiring soon',
  'compliance.license_expired': 'License expired',
  'compliance.heartbeat_timeout': 'Device stopped checking in',
  'compliance.threshold_crossed': 'Capacity threshold reached',
  'compliance.threshold_cleared': 'Back under a capacity threshold',
  'compliance.goodwill_used': 'Goodwill activation used',
  'compliance.activation_denied': 'Activation refused: limit reached',
  'compliance.settings_updated': 'Alert settings changed',
  'compliance.thresholds_updated': 'Capacity thresholds changed',
};

/** "license.renewed" -> "License renewed"; "activation.created" -> "Device activated". */
export function describe(e: Pick<ActivityEvent, 'type'>): string {
  const known = LABELS[e.type];
  if (known) return known;
  const [subject = e.type, verb = ''] = e.type.split('.');
  const noun = subject
    .replace(/_/g, ' ')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .replace(/\bapi\b/g, 'API');
  const past = VERBS[verb] ?? verb.replace(/_/g, ' ');
  return `${noun.charAt(0).toUpperCase()}${noun.slice(1)} ${past}`.trim();
}

export function actor(e: Pick<ActivityEvent, 'actorType'>): string {
  switch (e.actorType) {
    case 'user':
      return 'a member';
    case 'api_token':
      return 'an API token';
    case 'client':
    case 'client_key':
      return 'a device';
    case 'operator':
      return 'the operator CLI';
    case 'system':
      return 'Tessera';
    default:
      return e.actorType.replace(/_/g, ' ');
  }
}

/** A short, human detail from the payload: the license key, a name or a code, when present. */
export function detail(e: Pick<ActivityEvent, 'payload'>): string | null {
  const p = e.payload;
  if (!p || typeof p !== 'object') return null;
  const o = p as Record<string, unknown>;
  // Expiring-soon alerts: how long is left says more than the ids they carry.
  if (typeof o.daysLeft === 'number' && o.daysLeft > 0) return `${o.daysLeft} day${o.daysLeft === 1 ? '' : 's'} left`;
  // Thresholds: crossed or cleared at a percent of a cap, or the percents set.
  if (typeof o.metric === 'string' && typeof o.percent === 'number') return `${o.metric.toLowerCase()} at ${o.percent}%`;
  if (typeof o.metric === 'string' && Array.isArray(o.percents)) return `${o.metric.toLowerCase()}: ${o.percents.join('%, ')}%`;
  // Alert settings: what was set.
  const settings = [
    Array.isArray(o.expiringLeadDays) ? (o.expiringLeadDays.length ? `expiring-soon ${o.expiringLeadDays.join(', ')} day${o.expiringLeadDays.length === 1 && o.expiringLeadDays[0] === 1 ? '' : 's'} before` : 'expiring-soon alerts off') : null,
    typeof o.heartbeatTolerancePercent === 'number' ? `heartbeat tolerance ${o.heartbeatTolerancePercent}%` : null,
  ].filter(Boolean);
  if (settings.length) return settings.join('; ');
  // Seat leases: whose seat, and whether an operator took it back.
  if (typeof o.holder === 'string' && o.holder) return o.reason === 'released_by_operator' ? `${o.holder}, freed by an operator` : o.holder;
  for (const k of ['key', 'licenseKey', 'name', 'code', 'hostname', 'email', 'fingerprint']) {
    const v = o[k];
    if (typeof v === 'string' && v) return v;
  }
  return null;
}
