/**
 * What a license entitles, read the same way from a server answer (`LicenseInfo`) and from the claims of
 * a verified activation token or license file: on/off `features`, and numeric `entitlements`
 * (`{ feature, limit }`, e.g. projects = 10). A feature is either on/off or numeric, never both.
 */
export interface Entitlement {
  feature: string;
  limit: number;
}

/** A `LicenseInfo`, the payload of a verified document, or the verified document itself. */
export type EntitlementSource = object;

type Claims = { features?: unknown; entitlements?: unknown };
function claimsOf(source: EntitlementSource): Claims {
  const payload = (source as { payload?: unknown }).payload;
  return typeof payload === 'object' && payload !== null ? (payload as Claims) : (source as Claims);
}

/** The numeric entitlements; anything malformed in the claims is left out rather than trusted. */
export function entitlementsOf(source: EntitlementSource): Entitlement[] {
  const list = claimsOf(source).entitlements;
  if (!Array.isArray(list)) return [];
  return list
    .filter((e): e is Entitlement => typeof e?.feature === 'string' && Number.isInteger(e?.limit) && e.limit >= 0)
    .map((e) => ({ feature: e.feature, limit: e.limit }));
}

export function featuresOf(source: EntitlementSource): string[] {
  const list = claimsOf(source).features;
  return Array.isArray(list) ? list.filter((f): f is string => typeof f === 'string') : [];
}

/** The numeric entitlement of a feature, or null when the license gives it no limit. */
export function entitlement(source: EntitlementSource, feature: string): Entitlement | null {
  return entitlementsOf(source).find((e) => e.feature === feature) ?? null;
}

/** The limit of a numeric entitlement; null when the feature has none (on/off, or not licensed: see isEntitled). */
export function limitOf(source: EntitlementSource, feature: string): number | null {
  return entitlement(source, feature)?.limit ?? null;
}

/**
 * The server's rule (validateLicense): a numeric entitlement entitles when its limit is above 0 and at
 * least `quantity` (default 1); an on/off feature has no limit, so any quantity passes.
 */
export function isEntitled(source: EntitlementSource, feature: string, quantity?: number): boolean {
  const numeric = entitlement(source, feature);
  if (!numeric) return featuresOf(source).includes(feature);
  return numeric.limit > 0 && (quantity ?? 1) <= numeric.limit;
}
