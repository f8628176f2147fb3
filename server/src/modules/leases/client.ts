import type { PrismaClient } from '@tessera/db/database';
import { LicensingError } from '../../errors.ts';
import { isUniqueViolation } from '../common/db.ts';
import { parseKey } from '../licenses/keys.ts';
import { type GraceFields, inGracePeriod, licenseStatus } from '../licenses/service.ts';

/** Where a license key points. A key never moves to another license or tenant, so this is cacheable. */
export interface KeyTarget {
  licenseId: string;
  tenantId: string;
}

const CACHE_LIMIT = 10_000;
const targets = new Map<string, KeyTarget>();

/**
 * The license a client key names (license keys only). A malformed key is LICENSE_NOT_FOUND without a
 * database hit; a known key costs nothing after its first use. Status is checked by the caller, on
 * the row it reads (or locks) anyway.
 */
export async function keyTarget(prisma: PrismaClient, input: string): Promise<KeyTarget> {
  const parsed = parseKey(input);
  if (!parsed || parsed.kind !== 'LIC') throw new LicensingError('LICENSE_NOT_FOUND', 'No license has this key');
  const hit = targets.get(parsed.key);
  if (hit) return hit;
  const row = await prisma.license.findUnique({ where: { key: parsed.key }, select: { id: true, tenantId: true } });
  if (!row) throw new LicensingError('LICENSE_NOT_FOUND', 'No license has this key');
  const target = { licenseId: row.id, tenantId: row.tenantId };
  if (targets.size >= CACHE_LIMIT) targets.delete(targets.keys().next().value!);
  targets.set(parsed.key, target);
  return target;
}

export interface StatusFields {
  state: string;
  startsAt: Date | null;
  expiresAt: Date | null;
  type: string;
  gracePeriodSeconds: number | null;
}

/** Rule order (STYLE.md 6): revoked/suspended -> expired -> not yet valid. */
export function assertUsable(l: StatusFields, now: Date): void {
  const status = licenseStatus({ state: l.state as 'ACTIVE', expiresAt: l.expiresAt }, now);
  if (status === 'REVOKED') throw new LicensingError('LICENSE_REVOKED', 'The license has been revoked');
  if (status === 'SUSPENDED') throw new LicensingError('LICENSE_SUSPENDED', 'The license is suspended');
  // A subscription in its grace period keeps serving its seats and meters until the grace ends.
  if (status === 'EXPIRED' && !inGracePeriod(l as GraceFields, now)) throw new LicensingError('LICENSE_EXPIRED', 'The license has expired');
  if (l.startsAt && l.startsAt.getTime() > now.getTime()) {
    throw new LicensingError('LICENSE_NOT_YET_VALID', 'The license is not valid yet');
  }
}

export function clientActor(licenseId: string) {
  return { type: 'client', id: licenseId };
}

export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** A unique violation, also as a raw query reports it (P2010 wrapping the driver adapter's error). */
export function isDuplicate(err: unknown): boolean {
  if (isUniqueViolation(err)) return true;
  const adapter = (err as { meta?: { driverAdapterError?: { message?: string; cause?: { originalCode?: string; code?: string } } } })?.meta?.driverAdapterError;
  return (
    adapter?.cause?.originalCode === '23505' ||
    adapter?.cause?.code === '23505' ||
    /duplicate key value violates unique constraint/.test(adapter?.message ?? '')
  );
}
