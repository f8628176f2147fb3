import type {
  ClientType,
  DeploymentMode,
  EntitlementInput,
  FingerprintMatch,
  LicenseType,
  MeterEntitlementInput,
  MeterPeriod,
  Provisioning,
} from './graphql/generated/graphql';
import type { FieldErrors } from './graphql/payload';

/**
 * Policy terms as a form edits them: numbers are strings ("" = not set) so inputs can hold
 * partial text. The rules below mirror server/src/modules/catalog/terms.ts so people see problems
 * before they submit; the server stays the authority and its field errors land on the same inputs.
 */
export interface TermsDraft {
  licenseType: LicenseType;
  validityDays: string;
  provisioning: Provisioning;
  clientType: ClientType;
  maxActivations: string;
  goodwillActivations: string;
  seats: string;
  leaseSeconds: string;
  heartbeatSeconds: string;
  inactivityReclaimSeconds: string;
  gracePeriodSeconds: string;
  deploymentMode: DeploymentMode;
  allowOffline: boolean;
  fingerprintMatch: FingerprintMatch;
  features: string[];
  /** Numeric entitlements (projects = 10); a feature is either here or in `features`. */
  entitlements: { feature: string; limit: string }[];
  meters: { meter: string; quota: string; period: MeterPeriod }[];
  allowedVersions: string;
}

export const LICENSE_TYPES: LicenseType[] = ['PERPETUAL', 'SUBSCRIPTION', 'TRIAL', 'FLOATING', 'NODE_LOCKED', 'SITE'];
export const METER_PERIODS: MeterPeriod[] = ['NONE', 'DAY', 'MONTH', 'YEAR'];
export const DEPLOYMENT_MODES: DeploymentMode[] = ['ONLINE', 'OFFLINE', 'HYBRID'];
export const FINGERPRINT_MATCHES: FingerprintMatch[] = ['EXACT', 'ANY_TWO', 'MAJORITY'];

export interface TermsValues {
  licenseType: LicenseType;
  validityDays: number | null;
  provisioning: Provisioning;
  clientType: ClientType;
  maxActivations: number | null;
  goodwillActivations: number;
  seats: number | null;
  leaseSeconds: number | null;
  heartbeatSeconds: number | null;
  inactivityReclaimSeconds: number | null;
  gracePeriodSeconds: number | null;
  deploymentMode: DeploymentMode;
  allowOffline: boolean;
  fingerprintMatch: FingerprintMatch;
  features: readonly string[];
  entitlements: readonly { feature: string; limit: number }[];
  meters: readonly { meter: string; quota: number; period: MeterPeriod }[];
  allowedVersions: string | null;
}

export function emptyDraft(licenseType: LicenseType = 'SUBSCRIPTION'): TermsDraft {
  return {
    licenseType,
    validityDays: licenseType === 'PERPETUAL' ? '' : '365',
    provisioning: 'NAMED',
    clientType: 'DEVICES',
    maxActivations: '',
    goodwillActivations: '0',
    seats: '',
    leaseSeconds: '',
    heartbeatSeconds: '',
    inactivityReclaimSeconds: '',
    gracePeriodSeconds: '',
    deploymentMode: 'ONLINE',
    allowOffline: false,
    fingerprintMatch: 'EXACT',
    features: [],
    entitlements: [],
    meters: [],
    allowedVersions: '',
  };
}

const str = (n: number | null | undefined) => (n === null || n === undefined ? '' : String(n));

export function draftFrom(t: TermsValues): TermsDraft {
  return {
    licenseType: t.licenseType,
    validityDays: str(t.validityDays),
    provisioning: t.provisioning,
    clientType: t.clientType,
    maxActivations: str(t.maxActivations),
    goodwillActivations: str(t.goodwillActivations),
    seats: str(t.seats),
    leaseSeconds: str(t.leaseSeconds),
    heartbeatSeconds: str(t.heartbeatSeconds),
    inactivityReclaimSeconds: str(t.inactivityReclaimSeconds),
    gracePeriodSeconds: str(t.gracePeriodSeconds),
    deploymentMode: t.deploymentMode,
    allowOffline: t.allowOffline,
    fingerprintMatch: t.fingerprintMatch,
    features: [...t.features],
    entitlements: t.entitlements.map((e) => ({ feature: e.feature, limit: String(e.limit) })),
    meters: t.meters.map((m) => ({ meter: m.meter, quota: String(m.quota), period: m.period })),
    allowedVersions: t.allowedVersions ?? '',
  };
}

const INT_MAX = 2_147_483_647;
const MAX_ENTITLEMENTS = 100;
type NumberField = 'validityDays' | 'maxActivations' | 'goodwillActivations' | 'seats' | 'leaseSeconds' | 'heartbeatSeconds' | 'inactivityReclaimSeconds' | 'gracePeriodSeconds';

/** [min, max, message for max] per numeric term, as the server's zod schema has them. */
const RANGES: Record<NumberField, [number, number, string]> = {
  validityDays: [1, 36_500, 'must be at most 36500'],
  maxActivations: [1, INT_MAX, 'is too large'],
  goodwillActivations: [0, INT_MAX, 'is too large'],
  seats: [1, INT_MAX, 'is too large'],
  leaseSeconds: [30, 2_592_000, 'must be at most 30 days'],
  heartbeatSeconds: [10, 2_592_000, 'must be at most 30 days'],
  inactivityReclaimSeconds: [60, 31_536_000, 'must be at most 365 days'],
  gracePeriodSeconds: [0, 31_536_000, 'must be at most 365 days'],
};

/** Parses an optional integer input: null when empty, NaN when not an integer. */
export function intOrNull(text: string): number | null {
  const t = text.trim();
  if (t === '') return null;
  return /^-?\d+$/.test(t) ? Number(t) : Number.NaN;
}

function numberProblem(field: NumberField, value: number | null): string | null {
  if (value === null) return null;
  if (Number.isNaN(value)) return 'must be a whole number';
  const [min, max, tooBig] = RANGES[field];
  if (value < min) return min === 0 ? 'must not be negative' : `must be at least ${min}`;
  if (value > max) return tooBig;
  return null;
}

/** Rough semver-range shape check; the server's semver parser has the last word. */
const RANGE_PART = /^(?:[<>]=?|=|~|\^)?\s*v?(?:\d+|[xX*])(?:\.(?:\d+|[xX*])){0,2}(?:-[\w.-]+)?(?:\+[\w.-]+)?$/;
export function looksLikeSemverRange(range: string): boolean {
  return range.split('||').every((alt) => {
    const a = alt.trim();
    if (a === '*') return true;
    if (a === '') return false;
    const hyphen = a.split(/\s+-\s+/);
    if (hyphen.length === 2) return hyphen.every((p) => RANGE_PART.test(p));
    return a
      .replace(/([<>]=?|=|~|\^)\s+/g, '$1')
      .split(/\s+/)
      .every((p) => RANGE_PART.test(p));
  });
}

export interface Catalogue {
  features: ReadonlySet<string>;
  meters: ReadonlySet<string>;
}

/** Problems of a draft, keyed like the server's ValidationError paths (features.0, entitlements.0.limit, meters.1.quota). */
export function validateTerms(d: TermsDraft, catalogue?: Catalogue): FieldErrors {
  const errors: FieldErrors = {};
  const at = (path: string, message: string) => {
    errors[path] ??= message;
  };
  const n = {} as Record<NumberField, number | null>;
  for (const field of Object.keys(RANGES) as NumberField[]) {
    n[field] = intOrNull(d[field]);
    const problem = numberProblem(field, n[field]);
    if (problem) at(field, problem);
  }
  const num = (f: NumberField) => (Number.isNaN(n[f]) ? null : n[f]);
  const goodwill = num('goodwillActivations') ?? 0;

  if (d.provisioning === 'NAMED') {
    if (num('seats') !== null) at('seats', 'seats apply to FLOATING provisioning only; a NAMED edition counts activations');
    if (num('leaseSeconds') !== null) at('leaseSeconds', 'leases apply to FLOATING provisioning only');
  } else if (n.seats === null) {
    at('seats', 'FLOATING provisioning needs a number of seats');
  }
  if (d.licenseType === 'FLOATING' && d.provisioning !== 'FLOATING') at('provisioning', 'a FLOATING license type needs FLOATING provisioning');
  if (goodwill > 0 && n.maxActivations === null) at('goodwillActivations', 'goodwill activations need a maxActivations cap to exceed');
  const max = num('maxActivations');
  if (d.licenseType === 'NODE_LOCKED' && max !== null && max > 1) at('maxActivations', 'a NODE_LOCKED license binds to exactly one device');
  if (d.licenseType === 'PERPETUAL' && n.validityDays !== null) at('validityDays', 'a PERPETUAL license does not expire; use SUBSCRIPTION for a fixed term');
  const hb = num('heartbeatSeconds');
  const reclaim = num('inactivityReclaimSeconds');
  if (hb !== null && reclaim !== null && reclaim < hb) {
    at('inactivityReclaimSeconds', 'must be at least heartbeatSeconds, or every device would be reclaimed between heartbeats');
  }
  if (num('gracePeriodSeconds') !== null && d.licenseType !== 'SUBSCRIPTION') {
    at('gracePeriodSeconds', 'a grace period applies to SUBSCRIPTION licenses only (renewal pending after expiry)');
  }
  if (d.deploymentMode === 'OFFLINE' && !d.allowOffline) at('allowOffline', 'an OFFLINE deployment needs offline activation allowed');

  const seenFeatures = new Set<string>();
  d.features.forEach((f, i) => {
    if (catalogue && !catalogue.features.has(f)) at(`features.${i}`, `unknown feature "${f}" for this product`);
    if (seenFeatures.has(f)) at(`features.${i}`, `feature "${f}" is listed twice`);
    seenFeatures.add(f);
  });
  if (d.entitlements.length > MAX_ENTITLEMENTS) at('entitlements', `at most ${MAX_ENTITLEMENTS} entitlements`);
  const seenEntitlements = new Set<string>();
  d.entitlements.forEach((e, i) => {
    const feature = e.feature.trim();
    if (!feature) at(`entitlements.${i}.feature`, 'choose a feature');
    else if (catalogue && !catalogue.features.has(feature)) at(`entitlements.${i}.feature`, `unknown feature "${feature}" for this product`);
    if (feature && seenEntitlements.has(feature)) at(`entitlements.${i}.feature`, `feature "${feature}" is listed twice`);
    else if (feature && seenFeatures.has(feature)) {
      at(`entitlements.${i}.feature`, `feature "${feature}" is also an on/off feature; list it in features or in entitlements, not both`);
    }
    seenEntitlements.add(feature);
    const limit = intOrNull(e.limit);
    if (limit === null) at(`entitlements.${i}.limit`, 'must not be empty');
    else if (Number.isNaN(limit)) at(`entitlements.${i}.limit`, 'must be a whole number');
    else if (limit < 0) at(`entitlements.${i}.limit`, 'must not be negative');
    else if (limit > INT_MAX) at(`entitlements.${i}.limit`, 'must be at most 2147483647');
  });
  const seenMeters = new Set<string>();
  d.meters.forEach((m, i) => {
    const meter = m.meter.trim();
    if (!meter) at(`meters.${i}.meter`, 'choose a meter');
    else if (catalogue && !catalogue.meters.has(meter)) at(`meters.${i}.meter`, `unknown meter "${meter}" for this product`);
    if (meter && seenMeters.has(meter)) at(`meters.${i}.meter`, `meter "${meter}" is listed twice`);
    seenMeters.add(meter);
    const quota = intOrNull(m.quota);
    if (quota === null) at(`meters.${i}.quota`, 'must not be empty');
    else if (Number.isNaN(quota)) at(`meters.${i}.quota`, 'must be a whole number');
    else if (quota < 0) at(`meters.${i}.quota`, 'must not be negative');
    else if (quota > INT_MAX) at(`meters.${i}.quota`, 'is too large');
  });
  const versions = d.allowedVersions.trim();
  if (versions.length > 200) at('allowedVersions', 'must be at most 200 characters');
  else if (versions && !looksLikeSemverRange(versions)) at('allowedVersions', `"${versions}" is not a semver range`);
  return errors;
}

/** The draft as GraphQL input values (call after validateTerms found nothing). */
export function termsInput(d: TermsDraft) {
  return {
    licenseType: d.licenseType,
    validityDays: intOrNull(d.validityDays),
    provisioning: d.provisioning,
    clientType: d.clientType,
    maxActivations: intOrNull(d.maxActivations),
    goodwillActivations: intOrNull(d.goodwillActivations) ?? 0,
    seats: intOrNull(d.seats),
    leaseSeconds: intOrNull(d.leaseSeconds),
    heartbeatSeconds: intOrNull(d.heartbeatSeconds),
    inactivityReclaimSeconds: intOrNull(d.inactivityReclaimSeconds),
    gracePeriodSeconds: intOrNull(d.gracePeriodSeconds),
    deploymentMode: d.deploymentMode,
    allowOffline: d.allowOffline,
    fingerprintMatch: d.fingerprintMatch,
    features: [...d.features],
    entitlements: d.entitlements.map((e): EntitlementInput => ({ feature: e.feature.trim(), limit: Number(e.limit) })),
    meters: d.meters.map((m): MeterEntitlementInput => ({ meter: m.meter.trim(), quota: Number(m.quota), period: m.period })),
    allowedVersions: d.allowedVersions.trim() || null,
  };
}

export type TermsInput = ReturnType<typeof termsInput>;

/** Only the terms that differ from the base: what a license overrides of its edition. */
export function changedTerms(next: TermsInput, base: TermsInput): Partial<TermsInput> {
  const out: Partial<TermsInput> = {};
  for (const key of Object.keys(next) as (keyof TermsInput)[]) {
    if (JSON.stringify(next[key]) !== JSON.stringify(base[key])) (out as Record<string, unknown>)[key] = next[key];
  }
  return out;
}
