import type { Edition } from '@tessera/db/client';
import semver from 'semver';
import { z } from 'zod';
import { ValidationError, type FieldProblem } from '../../errors.ts';
import { nonNegative, positive } from '../common/validate.ts';

/**
 * Policy terms: what an edition prescribes and a license may override. One definition, one set of
 * rules, used for editions, license overrides, updates and imports alike.
 */
export const LICENSE_TYPES = ['PERPETUAL', 'SUBSCRIPTION', 'TRIAL', 'FLOATING', 'NODE_LOCKED', 'SITE'] as const;
export const METER_PERIODS = ['NONE', 'DAY', 'MONTH', 'YEAR'] as const;

export const meterTerm = z.object({
  meter: z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
  quota: nonNegative,
  period: z.enum(METER_PERIODS),
});
export type MeterTerm = z.infer<typeof meterTerm>;

/** A feature with a numeric limit (e.g. projects = 10). Limit 0 keeps the limit on record but entitles nothing. */
export const entitlementTerm = z.object({
  feature: z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
  limit: z.number().int('must be an integer').min(0, 'must not be negative').max(2_147_483_647, 'must be at most 2147483647'),
});
export type EntitlementTerm = z.infer<typeof entitlementTerm>;
export const MAX_ENTITLEMENTS = 100;

/** Entitlements as stored (jsonb reorders keys), in the shape the terms use, so comparisons see no false change. */
export function entitlementsOf(row: { entitlements: unknown }): EntitlementTerm[] {
  return ((row.entitlements ?? []) as EntitlementTerm[]).map((e) => ({ feature: e.feature, limit: e.limit }));
}

export const termFields = {
  provisioning: z.enum(['NAMED', 'FLOATING']),
  clientType: z.enum(['DEVICES', 'USERS']),
  licenseType: z.enum(LICENSE_TYPES),
  validityDays: z.number().int('must be an integer').min(1, 'must be at least 1').max(36_500, 'must be at most 36500').nullable(),
  maxActivations: positive.nullable(),
  goodwillActivations: nonNegative,
  seats: positive.nullable(),
  leaseSeconds: z.number().int('must be an integer').min(30, 'must be at least 30').max(2_592_000, 'must be at most 30 days').nullable(),
  heartbeatSeconds: z.number().int('must be an integer').min(10, 'must be at least 10').max(2_592_000, 'must be at most 30 days').nullable(),
  inactivityReclaimSeconds: z.number().int('must be an integer').min(60, 'must be at least 60').max(31_536_000, 'must be at most 365 days').nullable(),
  gracePeriodSeconds: z.number().int('must be an integer').min(0, 'must not be negative').max(31_536_000, 'must be at most 365 days').nullable(),
  deploymentMode: z.enum(['ONLINE', 'OFFLINE', 'HYBRID']),
  allowOffline: z.boolean(),
  fingerprintMatch: z.enum(['EXACT', 'ANY_TWO', 'MAJORITY']),
  features: z.array(z.string().trim().min(1).max(64, 'must be at most 64 characters')).max(500, 'at most 500 features'),
  meters: z.array(meterTerm).max(100, 'at most 100 meters'),
  entitlements: z.array(entitlementTerm).max(MAX_ENTITLEMENTS, `at most ${MAX_ENTITLEMENTS} entitlements`),
  // An empty range means "any version", which null already says.
  allowedVersions: z
    .string()
    .trim()
    .max(200, 'must be at most 200 characters')
    .transform((v) => (v === '' ? null : v))
    .nullable(),
};

export type Terms = { [K in keyof typeof termFields]: z.output<(typeof termFields)[K]> };
export const TERM_KEYS = Object.keys(termFields) as (keyof Terms)[];

/** Input shape: every term optional (undefined = not given), so editions can default and licenses override. */
export const partialTerms = z.object(termFields).partial();
export type PartialTerms = z.infer<typeof partialTerms>;

export const DEFAULT_TERMS: Omit<Terms, 'licenseType'> = {
  provisioning: 'NAMED',
  clientType: 'DEVICES',
  validityDays: null,
  maxActivations: null,
  goodwillActivations: 0,
  seats: null,
  leaseSeconds: null,
  heartbeatSeconds: null,
  inactivityReclaimSeconds: null,
  gracePeriodSeconds: null,
  deploymentMode: 'ONLINE',
  allowOffline: false,
  fingerprintMatch: 'EXACT',
  features: [],
  meters: [],
  entitlements: [],
  allowedVersions: null,
};

export interface Catalogue {
  features: Set<string>;
  meters: Set<string>;
}

/**
 * Cross-field rules of a complete set of terms. `given` says which fields the caller set, so a
 * problem is reported on the field the caller can fix.
 */
export function termProblems(terms: Terms, catalogue: Catalogue, prefix = ''): FieldProblem[] {
  const p: FieldProblem[] = [];
  const at = (field: string, message: string) => p.push({ path: prefix + field, message });

  if (terms.provisioning === 'NAMED') {
    if (terms.seats !== null) at('seats', 'seats apply to FLOATING provisioning only; a NAMED edition counts activations');
    if (terms.leaseSeconds !== null) at('leaseSeconds', 'leases apply to FLOATING provisioning only');
  } else {
    if (terms.seats === null) at('seats', 'FLOATING provisioning needs a number of seats');
  }
  if (terms.licenseType === 'FLOATING' && terms.provisioning !== 'FLOATING') {
    at('provisioning', 'a FLOATING license type needs FLOATING provisioning');
  }
  if (terms.goodwillActivations > 0 && terms.maxActivations === null) {
    at('goodwillActivations', 'goodwill activations need a maxActivations cap to exceed');
  }
  // The activation cap is checked in SQL as maxActivations + goodwillActivations, a 32-bit integer.
  if (terms.maxActivations !== null && terms.maxActivations + terms.goodwillActivations > 2_147_483_647) {
    at('goodwillActivations', 'maxActivations + goodwillActivations must be at most 2147483647');
  }
  if (terms.licenseType === 'NODE_LOCKED' && terms.maxActivations !== null && terms.maxActivations > 1) {
    at('maxActivations', 'a NODE_LOCKED license binds to exactly one device');
  }
  if (terms.licenseType === 'PERPETUAL' && terms.validityDays !== null) {
    at('validityDays', 'a PERPETUAL license does not expire; use SUBSCRIPTION for a fixed term');
  }
  if (terms.heartbeatSeconds !== null && terms.inactivityReclaimSeconds !== null && terms.inactivityReclaimSeconds < terms.heartbeatSeconds) {
    at('inactivityReclaimSeconds', 'must be at least heartbeatSeconds, or every device would be reclaimed between heartbeats');
  }
  if (terms.gracePeriodSeconds !== null && terms.licenseType !== 'SUBSCRIPTION') {
    at('gracePeriodSeconds', 'a grace period applies to SUBSCRIPTION licenses only (renewal pending after expiry)');
  }
  if (terms.deploymentMode === 'OFFLINE' && !terms.allowOffline) {
    at('allowOffline', 'an OFFLINE deployment needs offline activation allowed');
  }
  const seenFeatures = new Set<string>();
  terms.features.forEach((f, i) => {
    if (!catalogue.features.has(f)) at(`features.${i}`, `unknown feature "${f}" for this product`);
    if (seenFeatures.has(f)) at(`features.${i}`, `feature "${f}" is listed twice`);
    seenFeatures.add(f);
  });
  // A feature is either on/off or numeric, never both: one answer to "is it entitled, and how much".
  const seenEntitlements = new Set<string>();
  terms.entitlements.forEach((e, i) => {
    if (!catalogue.features.has(e.feature)) at(`entitlements.${i}.feature`, `unknown feature "${e.feature}" for this product`);
    if (seenEntitlements.has(e.feature)) at(`entitlements.${i}.feature`, `feature "${e.feature}" is listed twice`);
    else if (seenFeatures.has(e.feature)) at(`entitlements.${i}.feature`, `feature "${e.feature}" is also an on/off feature; list it in features or in entitlements, not both`);
    seenEntitlements.add(e.feature);
  });
  const seenMeters = new Set<string>();
  terms.meters.forEach((m, i) => {
    if (!catalogue.meters.has(m.meter)) at(`meters.${i}.meter`, `unknown meter "${m.meter}" for this product`);
    if (seenMeters.has(m.meter)) at(`meters.${i}.meter`, `meter "${m.meter}" is listed twice`);
    seenMeters.add(m.meter);
  });
  if (terms.allowedVersions !== null && semver.validRange(terms.allowedVersions) === null) {
    at('allowedVersions', `"${terms.allowedVersions}" is not a semver range`);
  }
  return p;
}

/** Fills unset terms: allowOffline follows the deployment mode, NODE_LOCKED means one device. */
export function completeTerms(given: PartialTerms & { licenseType: Terms['licenseType'] }, base?: Terms): Terms {
  const merged = { ...DEFAULT_TERMS, ...(base ?? {}), ...stripUndefined(given) } as Terms;
  if (given.allowOffline === undefined && base === undefined) merged.allowOffline = merged.deploymentMode !== 'ONLINE';
  if (given.deploymentMode !== undefined && given.deploymentMode !== 'ONLINE' && given.allowOffline === undefined) merged.allowOffline = true;
  if (merged.licenseType === 'NODE_LOCKED' && merged.maxActivations === null) merged.maxActivations = 1;
  if (merged.provisioning === 'FLOATING' && merged.leaseSeconds === null) merged.leaseSeconds = 900;
  return merged;
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function assertTerms(terms: Terms, catalogue: Catalogue, prefix = '') {
  const problems = termProblems(terms, catalogue, prefix);
  if (problems.length) throw new ValidationError(problems);
}

export function pickTerms(row: Terms): Terms {
  return Object.fromEntries(TERM_KEYS.map((k) => [k, row[k]])) as Terms;
}

/** The terms an edition prescribes, as licenses copy them when issued. */
export function editionTerms(e: Edition): Terms {
  return pickTerms({ ...e, meters: e.meters as unknown as MeterTerm[], entitlements: entitlementsOf(e) } as unknown as Terms);
}
