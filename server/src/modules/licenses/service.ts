import type { License, LicenseType, Prisma } from '@tessera/db/client';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import { diff, inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import type { EventType } from '../audit/event-types.ts';
import { deviceCustomerIs, uniqueOr } from '../common/db.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { parse } from '../common/validate.ts';
import { catalogueOf } from '../catalog/service.ts';
import {
  completeTerms,
  editionTerms,
  entitlementsOf,
  LICENSE_TYPES,
  type MeterTerm,
  partialTerms,
  pickTerms,
  stripUndefined,
  termProblems,
  type Terms,
} from '../catalog/terms.ts';
import { generateKey } from './keys.ts';

export type LicenseStatus = 'ACTIVE' | 'EXPIRED' | 'SUSPENDED' | 'REVOKED';

/** Revoked and suspended win over expiry: the operator's decision is what the client must hear. */
export function licenseStatus(l: Pick<License, 'state' | 'expiresAt'>, now = new Date()): LicenseStatus {
  if (l.state === 'REVOKED') return 'REVOKED';
  if (l.state === 'SUSPENDED') return 'SUSPENDED';
  if (l.expiresAt && l.expiresAt.getTime() <= now.getTime()) return 'EXPIRED';
  return 'ACTIVE';
}

export interface GraceFields {
  type: License['type'];
  expiresAt: Date | null;
  gracePeriodSeconds: number | null;
}

/**
 * When a SUBSCRIPTION's grace period ends: past expiresAt the license is EXPIRED (renewal pending), but
 * the devices and seats it already serves keep working until then. Null without a grace period.
 */
export function graceEndsAt(l: GraceFields): Date | null {
  if (l.type !== 'SUBSCRIPTION' || !l.gracePeriodSeconds || !l.expiresAt) return null;
  return new Date(l.expiresAt.getTime() + l.gracePeriodSeconds * 1000);
}

/** Expired, but within its grace period. */
export function inGracePeriod(l: GraceFields, now = new Date()): boolean {
  const end = graceEndsAt(l);
  return end !== null && l.expiresAt!.getTime() <= now.getTime() && now.getTime() < end.getTime();
}

/** SQL for "this license row (alias) is not past its expiry, grace included". */
export const notExpiredSql = (alias: string, now: string) =>
  `(${alias}."expiresAt" IS NULL OR ${alias}."expiresAt" > ${now}
    OR (${alias}.type = 'SUBSCRIPTION' AND ${alias}."expiresAt" + make_interval(secs => COALESCE(${alias}."gracePeriodSeconds", 0)) > ${now}))`;

/** Prisma filter for a computed status. */
export function statusWhere(status: LicenseStatus, now = new Date()): Prisma.LicenseWhereInput {
  switch (status) {
    case 'REVOKED':
      return { state: 'REVOKED' };
    case 'SUSPENDED':
      return { state: 'SUSPENDED' };
    case 'EXPIRED':
      return { state: 'ACTIVE', expiresAt: { lte: now } };
    case 'ACTIVE':
      return { state: 'ACTIVE', OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] };
  }
}

const DAY_MS = 86_400_000;
/** The last instant a DateTime can carry (RFC 3339 has four-digit years); a later expiry cannot be stored or shown. */
export const LATEST_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const TOO_LATE = 'must be at most 9999-12-31T23:59:59Z';
const metadata = z
  .record(z.string().max(64), z.unknown())
  .refine((m) => JSON.stringify(m).length <= 16_384, 'must be at most 16 KB of JSON')
  .superRefine((m, ctx) => {
    // The longest a floating seat may be borrowed for (leases/service.ts borrowSeat): seconds, as borrowSeat's `seconds` is.
    const borrow = m.maxBorrowSeconds;
    if (borrow !== undefined && borrow !== null && !(Number.isInteger(borrow) && (borrow as number) >= 0 && (borrow as number) <= 31_536_000)) {
      ctx.addIssue({ code: 'custom', path: ['maxBorrowSeconds'], message: 'must be a whole number of seconds from 0 to 31536000 (365 days)' });
    }
  });
const dateInput = z.coerce.date({ message: 'is not a date' });

export const issueFields = {
  customerId: z.string().uuid().nullish(),
  name: z.string().trim().max(200, 'must be at most 200 characters').nullish(),
  startsAt: dateInput.nullish(),
  expiresAt: dateInput.nullish(),
  metadata: metadata.nullish(),
};

const createInput = partialTerms.extend({
  editionId: z.string().uuid(),
  tokenCount: z.number().int('must be an integer').min(0, 'must not be negative').max(1000, 'must be at most 1000').nullish(),
  ...issueFields,
});
export type CreateLicenseInput = z.input<typeof createInput>;

export function licenseTerms(l: License, validityDays: number | null = null): Terms {
  return pickTerms({ ...l, licenseType: l.type, meters: l.meters as unknown as MeterTerm[], entitlements: entitlementsOf(l), validityDays } as unknown as Terms);
}

/** Expiry from explicit date or validity days, checked against the type. */
export function resolveExpiry(terms: Terms, startsAt: Date | null, expiresAt: Date | null | undefined, now: Date, prefix = '', allowPast = false) {
  const problems: { path: string; message: string }[] = [];
  let expiry: Date | null = null;
  if (expiresAt && terms.validityDays !== null) {
    problems.push({ path: `${prefix}expiresAt`, message: 'give either expiresAt or validityDays, not both' });
  } else if (expiresAt) {
    expiry = expiresAt;
  } else if (terms.validityDays !== null) {
    expiry = new Date((startsAt ?? now).getTime() + terms.validityDays * DAY_MS);
  }
  if (expiry && !allowPast && expiry.getTime() <= now.getTime()) problems.push({ path: `${prefix}expiresAt`, message: 'must be in the future' });
  if (expiry && expiry.getTime() > LATEST_DATE_MS) problems.push({ path: `${prefix}expiresAt`, message: `${TOO_LATE} (startsAt plus validityDays is later)` });
  if (expiry && startsAt && expiry.getTime() <= startsAt.getTime()) problems.push({ path: `${prefix}expiresAt`, message: 'must be after startsAt' });
  if (expiry && terms.licenseType === 'PERPETUAL') problems.push({ path: `${prefix}licenseType`, message: 'a PERPETUAL license does not expire' });
  if (!expiry && (terms.licenseType === 'TRIAL' || terms.licenseType === 'SUBSCRIPTION')) {
    problems.push({ path: `${prefix}expiresAt`, message: `a ${terms.licenseType} license needs validityDays or expiresAt` });
  }
  return { expiry, problems };
}

export function licenseData(terms: Terms) {
  const { licenseType, validityDays: _v, meters, entitlements, ...rest } = terms;
  return { ...rest, type: licenseType, meters: meters as Prisma.InputJsonValue, entitlements: entitlements as Prisma.InputJsonValue };
}

/**
 * The customer a license is given to exists in the tenant, and stays until the transaction ends: the
 * key-share lock makes a concurrent deleteCustomer wait, and then count this license and refuse.
 */
async function holdCustomer(tx: Tx, tenantId: string, customerId: string): Promise<void> {
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "Customer" WHERE id = ${customerId}::uuid AND "tenantId" = ${tenantId}::uuid FOR KEY SHARE`;
  if (rows.length === 0) throw new NotFoundError('customer');
}

export async function createLicense(ctx: ServiceContext, input: CreateLicenseInput) {
  const { tenantId } = tenantWhere(ctx.actor);
  const { editionId, customerId, tokenCount, name, startsAt, expiresAt, metadata: meta, ...overrides } = parse(createInput, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    // FOR SHARE: an edition being deleted or archived is waited for, so this license either sees the
    // change or is counted by it.
    await tx.$queryRaw`SELECT id FROM "Edition" WHERE id = ${editionId}::uuid AND "tenantId" = ${tenantId}::uuid FOR SHARE`;
    const edition = await tx.edition.findFirst({ where: { id: editionId, tenantId } });
    if (!edition) throw new NotFoundError('edition');
    if (edition.archivedAt) throw new ConflictError(`edition "${edition.code}" is archived; unarchive it to issue licenses from it`);
    if (customerId) await holdCustomer(tx, tenantId, customerId);
    // Dates given on the license replace the edition's validity; so does making it PERPETUAL.
    const base = editionTerms(edition);
    if (expiresAt || overrides.licenseType === 'PERPETUAL') base.validityDays = null;
    const terms = completeTerms({ licenseType: base.licenseType, ...stripUndefined(overrides) }, base);
    const now = new Date();
    const { expiry, problems } = resolveExpiry(terms, startsAt ?? null, expiresAt, now);
    const all = [...problems];
    all.push(...termProblems(terms, await catalogueOf(tx, edition.productId)));
    if (all.length) throw new ValidationError(all);

    const license = await tx.license.create({
      data: {
        tenantId,
        productId: edition.productId,
        editionId: edition.id,
        customerId: customerId ?? null,
        key: generateKey('LIC'),
        name: name ?? null,
        startsAt: startsAt ?? null,
        expiresAt: expiry,
        metadata: (meta ?? {}) as Prisma.InputJsonValue,
        ...licenseData(terms),
      },
    });
    const tokenKeys = Array.from({ length: tokenCount ?? 0 }, () => generateKey('TOK'));
    if (tokenKeys.length) {
      await tx.tokenKey.createMany({ data: tokenKeys.map((key) => ({ tenantId, licenseId: license.id, key })) });
    }
    emit({
      type: 'license.created',
      subjectType: 'License',
      subjectId: license.id,
      licenseId: license.id,
      customerId: license.customerId,
      payload: { editionId: edition.id, type: license.type, expiresAt: license.expiresAt, tokenCount: tokenKeys.length },
    });
    return { license, tokenKeys };
  });
}

/** Locks the license row for the rest of the transaction so concurrent admin changes apply in turn. */
async function lockLicense(tx: Tx, tenantId: string, licenseId: string): Promise<License> {
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "License" WHERE id = ${licenseId}::uuid AND "tenantId" = ${tenantId}::uuid FOR UPDATE`;
  if (rows.length === 0) throw new NotFoundError('license');
  return tx.license.findUniqueOrThrow({ where: { id: licenseId } });
}

/** After a change clients must pick up: pending until every live device has the new revision. */
async function syncStateFor(tx: Tx, licenseId: string) {
  const live = await tx.activation.count({ where: { licenseId, status: 'ACTIVE' } });
  return live > 0 ? ('PENDING_SYNC' as const) : ('SYNCED' as const);
}

const updateInput = partialTerms.omit({ licenseType: true, validityDays: true }).extend({
  licenseId: z.string().uuid(),
  ...issueFields,
});
export type UpdateLicenseInput = z.input<typeof updateInput>;

/**
 * A license given to another customer takes its live activations along (each carries its license's
 * customer for the index that allows a device one live activation among a customer's licenses of a
 * product). A device live on this license and on one of the new customer's licenses of the product is
 * a conflict the operator settles (release one of the two); nothing is released behind their back.
 * Released and inactive activations have no say in that index (no active fingerprint) and never live
 * again, so they keep the customer they were live for: the move writes the live ones only, not the
 * license's whole history (a license of short-lived machines can have hundreds of thousands).
 */
async function moveDevicesTo(tx: Tx, license: License): Promise<void> {
  const [clash] = await tx.$queryRaw<{ fingerprint: string }[]>`
    SELECT a."activeFingerprint" AS fingerprint
      FROM "Activation" a JOIN "Activation" o ON o."productId" = a."productId" AND o."activeFingerprint" = a."activeFingerprint"
     WHERE a."licenseId" = ${license.id}::uuid AND o."licenseId" <> a."licenseId"
       AND ${deviceCustomerIs('o."customerId"', license.customerId)}
     LIMIT 1`;
  const message = (device: string) =>
    `${device} is active on this license and on another of that customer's licenses of this product; release one of the two first`;
  if (clash) throw new ConflictError(message(`the device ${clash.fingerprint.length > 40 ? `${clash.fingerprint.slice(0, 40)}…` : clash.fingerprint}`));
  // A device activated on the customer's other license meanwhile: the index refuses the move.
  await uniqueOr(message('a device activated meanwhile'), () => tx.$executeRaw`
    UPDATE "Activation" SET "customerId" = ${license.customerId}::uuid
     WHERE "licenseId" = ${license.id}::uuid AND "activeFingerprint" IS NOT NULL`);
}

/** Changes entitlements or caps; bumps the revision so devices pick the change up on their next heartbeat. */
export async function updateLicense(ctx: ServiceContext, input: UpdateLicenseInput) {
  const { tenantId } = tenantWhere(ctx.actor);
  const { licenseId, customerId, name, startsAt, expiresAt, metadata: meta, ...overrides } = parse(updateInput, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const before = await lockLicense(tx, tenantId, licenseId);
    if (before.state === 'REVOKED') throw new ConflictError('a revoked license cannot be changed');
    if (customerId) await holdCustomer(tx, tenantId, customerId);
    const terms = completeTerms({ licenseType: before.type, ...stripUndefined(overrides) }, licenseTerms(before));
    const problems = termProblems(terms, await catalogueOf(tx, before.productId));
    // The type is kept (renewLicense converts it), so the resulting dates must still suit it.
    const expiry = expiresAt !== undefined ? expiresAt : before.expiresAt;
    const start = startsAt !== undefined ? startsAt : before.startsAt;
    if (expiresAt && expiresAt.getTime() <= Date.now()) problems.push({ path: 'expiresAt', message: 'must be in the future' });
    if (expiry && terms.licenseType === 'PERPETUAL') {
      problems.push({ path: 'expiresAt', message: 'a PERPETUAL license does not expire; convert it with renewLicense' });
    }
    if (!expiry && (terms.licenseType === 'TRIAL' || terms.licenseType === 'SUBSCRIPTION')) {
      problems.push({ path: 'expiresAt', message: `a ${terms.licenseType} license needs an expiry` });
    }
    if (expiry && start && expiry.getTime() <= start.getTime()) problems.push({ path: 'expiresAt', message: 'must be after startsAt' });
    if (problems.length) throw new ValidationError(problems);
    if (terms.maxActivations !== null && terms.maxActivations + terms.goodwillActivations < before.activationsUsed) {
      throw new ConflictError(
        `${before.activationsUsed} devices hold activations; release some before lowering the limit below that`,
      );
    }
    const after = {
      ...licenseData(terms),
      ...(customerId !== undefined ? { customerId } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(startsAt !== undefined ? { startsAt } : {}),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
      ...(meta !== undefined && meta !== null ? { metadata: meta as Prisma.InputJsonValue } : {}),
    };
    const changes = diff({ ...before, entitlements: entitlementsOf(before) } as unknown as Record<string, unknown>, after);
    if (Object.keys(changes).length === 0) return before;
    const license = await tx.license.update({
      where: { id: licenseId },
      data: { ...after, revision: { increment: 1 }, syncState: await syncStateFor(tx, licenseId) },
    });
    if (customerId !== undefined && customerId !== before.customerId) await moveDevicesTo(tx, license);
    emit({ type: 'license.updated', subjectType: 'License', subjectId: licenseId, licenseId, customerId: license.customerId, payload: { revision: license.revision, changes } });
    return license;
  });
}

const renewInput = z
  .object({
    licenseId: z.string().uuid(),
    extendDays: z.number().int('must be an integer').min(1, 'must be at least 1').max(36_500, 'must be at most 36500').nullish(),
    expiresAt: dateInput.nullish(),
    licenseType: z.enum(LICENSE_TYPES).nullish(),
  })
  .refine((v) => !(v.extendDays && v.expiresAt), { message: 'give either extendDays or expiresAt, not both', path: ['extendDays'] })
  .refine((v) => v.extendDays || v.expiresAt || v.licenseType, { message: 'give extendDays, expiresAt or licenseType', path: ['extendDays'] });

/**
 * Extends or converts a license (trial -> subscription, one more year). Extension counts from the
 * current expiry, or from now when it has already lapsed, so a late renewal does not pay for the gap.
 */
export async function renewLicense(ctx: ServiceContext, input: z.input<typeof renewInput>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(renewInput, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const before = await lockLicense(tx, tenantId, data.licenseId);
    if (before.state === 'REVOKED') throw new ConflictError('a revoked license cannot be renewed');
    const now = Date.now();
    const type: LicenseType = data.licenseType ?? before.type;
    let expiresAt = before.expiresAt;
    if (data.expiresAt) {
      if (data.expiresAt.getTime() <= now) throw ValidationError.field('expiresAt', 'must be in the future');
      expiresAt = data.expiresAt;
    } else if (data.extendDays) {
      const from = Math.max(now, before.expiresAt?.getTime() ?? now);
      expiresAt = new Date(from + data.extendDays * DAY_MS);
      if (expiresAt.getTime() > LATEST_DATE_MS) throw ValidationError.field('extendDays', `would extend it past 9999-12-31; the expiry ${TOO_LATE}`);
    }
    if (type === 'PERPETUAL') {
      if (data.extendDays || data.expiresAt) {
        throw ValidationError.field(data.extendDays ? 'extendDays' : 'expiresAt', 'a PERPETUAL license does not expire; convert it to SUBSCRIPTION to give it a term');
      }
      expiresAt = null;
    } else if (!expiresAt && (type === 'TRIAL' || type === 'SUBSCRIPTION')) {
      throw ValidationError.field('extendDays', `a ${type} license needs an expiry: give extendDays or expiresAt`);
    }
    // A license that starts later must not end before it starts (createLicense and updateLicense refuse that too).
    if (expiresAt && before.startsAt && expiresAt.getTime() <= before.startsAt.getTime()) {
      throw ValidationError.field(data.expiresAt ? 'expiresAt' : 'extendDays', 'must be after the license starts (startsAt)');
    }
    let maxActivations = before.maxActivations;
    if (type !== before.type) {
      // The other terms stay; the new type must agree with them (FLOATING needs seats, NODE_LOCKED one device).
      // An uncapped license made NODE_LOCKED gets its one device, as createLicense and updateLicense give it.
      const terms = completeTerms({ licenseType: type }, { ...licenseTerms(before), licenseType: type });
      const clash = termProblems(terms, await catalogueOf(tx, before.productId));
      if (clash.length) throw new ValidationError(clash.map((p) => ({ path: 'licenseType', message: `${p.path}: ${p.message}` })));
      maxActivations = terms.maxActivations;
      if (maxActivations !== null && maxActivations + terms.goodwillActivations < before.activationsUsed) {
        throw new ConflictError(`${before.activationsUsed} devices hold activations; release some before making it ${type}`);
      }
    }
    const license = await tx.license.update({
      where: { id: before.id },
      data: { type, expiresAt, maxActivations, revision: { increment: 1 }, syncState: await syncStateFor(tx, before.id) },
    });
    emit({
      type: 'license.renewed',
      subjectType: 'License',
      subjectId: license.id,
      licenseId: license.id,
      customerId: license.customerId,
      payload: {
        revision: license.revision,
        changes: diff({ type: before.type, expiresAt: before.expiresAt, maxActivations: before.maxActivations }, { type, expiresAt, maxActivations }),
      },
    });
    return license;
  });
}

type Transition = 'suspend' | 'reinstate' | 'revoke';
const TRANSITIONS: Record<Transition, { from: License['state'][]; to: License['state']; event: EventType }> = {
  suspend: { from: ['ACTIVE'], to: 'SUSPENDED', event: 'license.suspended' },
  reinstate: { from: ['SUSPENDED'], to: 'ACTIVE', event: 'license.reinstated' },
  revoke: { from: ['ACTIVE', 'SUSPENDED'], to: 'REVOKED', event: 'license.revoked' },
};

/** Suspend (reversible), reinstate, revoke (final). An illegal transition is a ConflictError. */
export async function transitionLicense(ctx: ServiceContext, licenseId: string, action: Transition) {
  const { tenantId } = tenantWhere(ctx.actor);
  const rule = TRANSITIONS[action];
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const before = await lockLicense(tx, tenantId, licenseId);
    if (!rule.from.includes(before.state)) {
      throw new ConflictError(`cannot ${action} a license that is ${before.state.toLowerCase()}`);
    }
    const now = new Date();
    const license = await tx.license.update({
      where: { id: licenseId },
      data: {
        state: rule.to,
        suspendedAt: rule.to === 'SUSPENDED' ? now : rule.to === 'ACTIVE' ? null : before.suspendedAt,
        revokedAt: rule.to === 'REVOKED' ? now : null,
      },
    });
    emit({ type: rule.event, subjectType: 'License', subjectId: licenseId, licenseId, customerId: license.customerId, payload: { from: before.state, to: rule.to } });
    return license;
  });
}
