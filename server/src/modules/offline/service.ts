import { createHash, randomUUID } from 'node:crypto';
import type { License } from '@tessera/db/client';
import { decodeJwt, decodeProtectedHeader, importJWK, type JWK, jwtVerify } from 'jose';
import { z } from 'zod';
import type { AppDeps } from '../../context.ts';
import { ConflictError, LicensingError, NotFoundError, ValidationError } from '../../errors.ts';
import { bindOfflineDevice, markSynced, releaseOfflineActivation } from '../activation/service.ts';
import { inTransaction, type ServiceContext } from '../audit/service.ts';
import type { MeterTerm } from '../catalog/terms.ts';
import { retriedOnDeadlock } from '../common/db.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { parse, textProblems } from '../common/validate.ts';
import { parseKey } from '../licenses/keys.ts';
import { graceEndsAt } from '../licenses/service.ts';
import { windowOf } from '../metering/service.ts';
import { signerFor, TOKEN_TYPES } from '../signing/service.ts';

/**
 * Offline (air-gapped) licensing. The customer's machine makes a request file signed with a device
 * key of its own; the vendor issues a license file (signed with the tenant key) that counts as an
 * activation exactly like an online one; refresh files carry renewals; the deactivation file, signed
 * with the device key, frees the activation and reports offline usage, exactly once.
 */

export const OFFLINE_TYPES = { request: 'tessera-request+jwt', deactivation: 'tessera-deactivation+jwt' } as const;
const MAX_FILE_BYTES = 64 * 1024;
/** A request older than this is refused: the customer makes a new one. */
export const REQUEST_MAX_AGE_DAYS = 30;
/** Customer clocks drift; a request "from the future" within this margin is accepted. */
const FUTURE_SKEW_SECONDS = 24 * 3600;
const ARMOR = /-----BEGIN TESSERA ([A-Z ]+)-----([\s\S]*?)-----END TESSERA \1-----/;

function armor(label: string, jws: string): string {
  return `-----BEGIN TESSERA ${label}-----\n${jws.replace(/.{1,64}/g, '$&\n')}-----END TESSERA ${label}-----\n`;
}

const invalid = (message: string) => new LicensingError('INVALID_SIGNATURE', message);

/** "an activation request", "a license": an armor label as a phrase. */
const article = (label: string) => `${/^[AEIOU]/.test(label) ? 'an' : 'a'} ${label.toLowerCase()}`;

/** The compact JWS inside an armored file; ValidationError for what cannot be a Tessera file at all. */
function unarmor(text: string, path: string, label: string): string {
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw ValidationError.field(path, `must be at most ${MAX_FILE_BYTES / 1024} KB; this is not a Tessera file`);
  const m = ARMOR.exec(text);
  if (m && m[1] !== label) throw ValidationError.field(path, `is ${article(m[1]!)} file, not ${article(label)} file`);
  const body = (m ? m[2]! : text).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(body)) throw invalid('The file is truncated or corrupted');
  return body;
}

function headerOf(jws: string) {
  try {
    return decodeProtectedHeader(jws);
  } catch {
    throw invalid('The file header cannot be read');
  }
}

const component = z.object({ kind: z.string().min(1).max(64), value: z.string().min(1).max(512) });
const requestClaims = z.object({
  tenant: z.string().min(1).max(40),
  key: z.string().min(1).max(64),
  fingerprint: z.string().trim().min(1).max(512),
  components: z.array(component).max(64).default([]),
  client: z
    .object({
      hostname: z.string().max(200).nullish(),
      platform: z.string().max(200).nullish(),
      osVersion: z.string().max(200).nullish(),
      appVersion: z.string().max(200).nullish(),
    })
    .partial()
    .default({}),
  nonce: z.string().min(8).max(128),
  iat: z.number().int(),
});
export type OfflineRequest = z.infer<typeof requestClaims> & { devicePublicKey: JWK };

function publicEd25519(jwk: unknown): JWK {
  const k = jwk as JWK | undefined;
  if (!k || k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || 'd' in k) throw invalid('The request is not signed with an Ed25519 device key');
  return { kty: 'OKP', crv: 'Ed25519', x: k.x };
}

/** Reads and checks a request file: its own signature (device key in the header), shape, age. */
export async function readRequest(text: string, now = new Date()): Promise<OfflineRequest> {
  const jws = unarmor(text, 'request', 'ACTIVATION REQUEST');
  const header = headerOf(jws);
  if (header.typ !== OFFLINE_TYPES.request) throw invalid(`Expected an activation request, got ${String(header.typ)}`);
  const jwk = publicEd25519(header.jwk);
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(jws, await importJWK(jwk, 'EdDSA'), { algorithms: ['EdDSA'], typ: OFFLINE_TYPES.request }));
  } catch {
    throw invalid('The request signature does not verify: the file was altered');
  }
  const unstorable = textProblems(payload, 'request');
  if (unstorable.length) throw new ValidationError(unstorable);
  const parsed = requestClaims.safeParse(payload);
  if (!parsed.success) {
    throw new ValidationError(parsed.error.issues.map((i) => ({ path: `request.${i.path.join('.')}`, message: i.message })));
  }
  const age = now.getTime() / 1000 - parsed.data.iat;
  if (age > REQUEST_MAX_AGE_DAYS * 86400) throw new LicensingError('REQUEST_EXPIRED', `The request is older than ${REQUEST_MAX_AGE_DAYS} days; make a new one`);
  if (age < -FUTURE_SKEW_SECONDS) throw new LicensingError('REQUEST_EXPIRED', 'The request is dated in the future; check the machine clock');
  return { ...parsed.data, devicePublicKey: jwk };
}

/** A license file for one activation, with the license's current terms and revision. */
export async function licenseFile(app: AppDeps, license: License, activationId: string, fingerprint: string): Promise<string> {
  const jws = await signerFor(app).sign(
    license.tenantId,
    TOKEN_TYPES.license,
    {
      sub: license.id,
      activation: activationId,
      key: license.key,
      fingerprint,
      licenseType: license.type,
      licenseExpiresAt: license.expiresAt?.toISOString() ?? null,
      graceEndsAt: graceEndsAt(license)?.toISOString() ?? null,
      features: license.features,
      meters: license.meters,
      entitlements: license.entitlements,
      maxActivations: license.maxActivations,
      revision: license.revision,
    },
    // A subscription's grace period keeps the machines it serves working, offline ones as online ones.
    graceEndsAt(license) ?? license.expiresAt,
  );
  return armor('LICENSE', jws);
}

const issueInput = z
  .object({
    licenseId: z.string().uuid(),
    request: z.string().nullish(),
    fingerprint: z.string().trim().min(1, 'must not be empty').max(512, 'must be at most 512 characters').nullish(),
  })
  .refine((v) => !!v.request !== !!v.fingerprint, { message: 'give either a request file or a fingerprint, not both', path: ['request'] });

/**
 * Issues a license file for a machine, from its request file or a fingerprint the vendor typed in.
 * It takes an activation exactly like an online activation (same cap, same rules, same device reuse).
 */
export async function issueOfflineLicense(
  ctx: ServiceContext,
  input: { licenseId: string; request?: string | null; fingerprint?: string | null },
): Promise<{ licenseFile: string; activationId: string; reused: boolean }> {
  const { tenantId } = tenantWhere(ctx.actor);
  const { licenseId, request: text, fingerprint: typed } = parse(issueInput, input);
  const license = await ctx.prisma.license.findFirst({ where: { id: licenseId, tenantId }, include: { tenant: { select: { slug: true } } } });
  if (!license) throw new NotFoundError('license');

  let request: OfflineRequest | null = null;
  let tokenKeyId: string | null = null;
  if (text) {
    request = await readRequest(text);
    if (request.tenant !== license.tenant.slug) throw ValidationError.field('request', `the request was made for another vendor ("${request.tenant}")`);
    const key = parseKey(request.key);
    if (!key) throw ValidationError.field('request', 'the request carries a malformed license key');
    if (key.kind === 'LIC' && key.key !== license.key) throw ValidationError.field('request', 'the request is for another license');
    if (key.kind === 'TOK') {
      const token = await ctx.prisma.tokenKey.findFirst({ where: { key: key.key, licenseId } });
      if (!token) throw ValidationError.field('request', 'the request is for another license');
      tokenKeyId = token.id;
    }
  }

  const bound = await bindOfflineDevice(ctx, license, {
    fingerprint: request?.fingerprint ?? typed!,
    components: request?.components ?? [],
    client: request?.client ?? {},
    devicePublicKey: request?.devicePublicKey ?? null,
    nonce: request?.nonce ?? null,
    tokenKeyId,
  });
  const fresh = await ctx.prisma.license.findUniqueOrThrow({ where: { id: license.id } });
  return { licenseFile: await licenseFile(ctx.app, fresh, bound.activationId, bound.fingerprint), activationId: bound.activationId, reused: bound.reused };
}

/** The live offline activation a refresh or bundle is for, with its license; refused as the refresh is. */
async function refreshable(ctx: ServiceContext, activationId: string) {
  const { tenantId } = tenantWhere(ctx.actor);
  const activation = await ctx.prisma.activation.findFirst({ where: { id: activationId, tenantId }, include: { license: true } });
  if (!activation) throw new NotFoundError('activation');
  if (!activation.offline) throw new ConflictError('this device activated online; it picks changes up through its heartbeat');
  if (activation.status !== 'ACTIVE') throw new ConflictError('this activation is no longer active');
  if (activation.license.state === 'REVOKED') throw new ConflictError('the license is revoked');
  // As a suspended license's online devices get no fresh token (their heartbeats are refused).
  if (activation.license.state === 'SUSPENDED') throw new ConflictError('the license is suspended; reinstate it first');
  return activation;
}

/**
 * A refresh file for an offline device after a renewal or entitlement change: the same binding, the
 * current revision. The client refuses a file older than the one it holds (anti-rollback).
 */
export async function refreshOfflineLicense(ctx: ServiceContext, activationId: string): Promise<{ licenseFile: string; activationId: string }> {
  const { tenantId } = tenantWhere(ctx.actor);
  const activation = await refreshable(ctx, activationId);
  const license = activation.license;
  const file = await licenseFile(ctx.app, license, activation.id, activation.fingerprint);
  await inTransaction(ctx, tenantId, async (tx, emit) => {
    await tx.activation.update({ where: { id: activation.id }, data: { syncedRevision: license.revision } });
    await markSynced(tx, [license.id]);
    emit({
      type: 'license.refresh_issued',
      subjectType: 'Activation',
      subjectId: activation.id,
      licenseId: license.id,
      customerId: license.customerId,
      payload: { revision: license.revision, fingerprint: activation.fingerprint },
    });
  });
  return { licenseFile: file, activationId: activation.id };
}

/**
 * The license file an offline device already holds, signed again, changing nothing (a download): only
 * while the license is at the revision the device was last issued. A change since needs a refresh
 * (refreshOfflineLicense), which is recorded and brings the license in sync.
 */
export async function currentOfflineLicense(ctx: ServiceContext, activationId: string): Promise<{ licenseFile: string; activationId: string }> {
  const activation = await refreshable(ctx, activationId);
  const license = activation.license;
  if (activation.syncedRevision < license.revision) {
    throw new ConflictError(
      `the license changed since this machine's file (revision ${activation.syncedRevision}, now ${license.revision}): issue a refresh (POST) to send the change`,
    );
  }
  return { licenseFile: await licenseFile(ctx.app, license, activation.id, activation.fingerprint), activationId: activation.id };
}

const usageClaim = z.record(z.string().min(1).max(64), z.number().int().min(0).max(2_147_483_647)).default({});

/**
 * Imports a deactivation file: verifies it with the device key stored at issuance, frees the
 * activation and adds the offline consumption to the usage ledger, in one transaction. A second
 * import of the same (or any later) deactivation of that activation changes nothing and answers the same.
 */
export async function importOfflineDeactivation(ctx: ServiceContext, text: string): Promise<{ activationId: string; imported: boolean }> {
  const { tenantId } = tenantWhere(ctx.actor);
  const jws = unarmor(text, 'file', 'DEACTIVATION');
  const header = headerOf(jws);
  if (header.typ !== OFFLINE_TYPES.deactivation) throw invalid(`Expected a deactivation file, got ${String(header.typ)}`);
  let claimed: Record<string, unknown>;
  try {
    claimed = decodeJwt(jws);
  } catch {
    throw invalid('The file payload cannot be read');
  }
  const activationId = typeof claimed.activation === 'string' && z.string().uuid().safeParse(claimed.activation).success ? claimed.activation : null;
  if (!activationId) throw invalid('The file names no activation');
  const [activation, tenant] = await Promise.all([
    ctx.prisma.activation.findFirst({ where: { id: activationId, tenantId }, include: { license: true } }),
    ctx.prisma.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { slug: true } }),
  ]);
  if (!activation) throw invalid('The file matches no offline activation of this vendor');
  if (!activation.devicePublicKey) {
    throw invalid('This activation was issued from a typed fingerprint and has no device key; release it from the console instead');
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(jws, await importJWK(activation.devicePublicKey as JWK, 'EdDSA'), {
      algorithms: ['EdDSA'],
      typ: OFFLINE_TYPES.deactivation,
      issuer: tenant.slug,
      subject: activation.licenseId,
    }));
  } catch {
    throw invalid('The deactivation file was not signed by the device that holds this activation, or was altered');
  }
  if (payload.fingerprint !== activation.fingerprint) throw invalid('The file is for another machine');
  const usage = usageClaim.safeParse(payload.usage);
  if (!usage.success) throw ValidationError.field('file', 'the usage it reports is not a map of meter to a non-negative count');
  const meters = activation.license.meters as unknown as MeterTerm[];
  // A meter of the product taken off the license after its file was issued: the machine's use of it
  // happened, but there is no quota left to count it against. The seat is freed all the same (a refused
  // file could not be made again: the machine has dropped its license), and that usage is kept in the
  // deactivation's record and its event (`unrecorded`), not in the ledger. A meter the product never had
  // is a file that is not the SDK's: refused.
  const offLicense = Object.keys(usage.data).filter((m) => !meters.some((t) => t.meter === m));
  if (offLicense.length) {
    const ofProduct = await ctx.prisma.meter.findMany({ where: { tenantId, productId: activation.license.productId, code: { in: offLicense } }, select: { code: true } });
    const never = offLicense.filter((m) => !ofProduct.some((p) => p.code === m));
    if (never.length) throw ValidationError.field('file', `the product has no meter ${never.map((m) => `"${m}"`).join(', ')}`);
  }

  const fileHash = createHash('sha256').update(jws).digest('hex');
  const now = new Date();
  // Sorted, so that two imports of one license create missing balance rows in the same order.
  const used = Object.entries(usage.data)
    .filter(([meter, quantity]) => quantity > 0 && !offLicense.includes(meter))
    .map(([meter, quantity]) => {
      const term = meters.find((t) => t.meter === meter)!;
      return { meter, quantity, quota: term.quota, window: windowOf(term.period, now) };
    })
    .sort((a, b) => (a.meter < b.meter ? -1 : a.meter > b.meter ? 1 : 0));
  // The transaction is the whole import, so one aborted to break a deadlock simply runs again.
  return retriedOnDeadlock(() => inTransaction(ctx, tenantId, async (tx, emit) => {
    // Exactly once: the first import of a deactivation for this activation wins; later ones change nothing.
    const [first] = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO "OfflineDeactivation" (id, "tenantId", "activationId", "fileHash", usage, "importedAt")
      VALUES (${randomUUID()}::uuid, ${tenantId}::uuid, ${activation.id}::uuid, ${fileHash}, ${JSON.stringify(usage.data)}::jsonb, ${now}::timestamp(3))
      ON CONFLICT ("activationId") DO NOTHING
      RETURNING id`;
    if (!first) return { activationId: activation.id, imported: false };
    // The license row, then the activation (as activations and the sweep take them), then balance rows
    // (usage statements lock the license before balance rows too).
    const { released, synced } = await releaseOfflineActivation(tx, activation.id, tenantId, now);
    const base = { licenseId: activation.licenseId, customerId: activation.license.customerId };
    if (used.length > 0) {
      // The balance rows that exist, locked in key order (the database's, as the usage statements use it)
      // before any is written: in the meter order of the device's file, an import and a batch of uses
      // deadlocked on them.
      await tx.$queryRaw`
        SELECT 1 FROM "UsageBalance"
         WHERE "licenseId" = ${activation.licenseId}::uuid
           AND (meter, "window") IN (SELECT * FROM unnest(${used.map((u) => u.meter)}::text[], ${used.map((u) => u.window)}::text[]))
         ORDER BY "licenseId", meter, "window"
           FOR UPDATE`;
    }
    for (const { meter, quantity, quota, window } of used) {
      const ticketId = randomUUID();
      // Offline use already happened: it is recorded as it is (a quota overrun shows in the balance).
      await tx.$executeRaw`
        WITH b AS (
          INSERT INTO "UsageBalance" ("licenseId", meter, "window", "tenantId", quota, used, reserved, "updatedAt")
          VALUES (${activation.licenseId}::uuid, ${meter}, ${window}, ${tenantId}::uuid, ${quota}, ${quantity}, 0, ${now}::timestamp(3))
          ON CONFLICT ("licenseId", meter, "window") DO UPDATE SET used = "UsageBalance".used + EXCLUDED.used, "updatedAt" = EXCLUDED."updatedAt"
          RETURNING 1
        ), t AS (
          INSERT INTO "UsageTicket" (id, "tenantId", "licenseId", meter, "window", fingerprint, "idempotencyKey", "requestHash", quantity, committed,
            status, receipt, "createdAt", "endedAt")
          SELECT ${ticketId}::uuid, ${tenantId}::uuid, ${activation.licenseId}::uuid, ${meter}, ${window}, ${activation.fingerprint},
            ${`offline-deactivation:${activation.id}:${meter}`}, ${fileHash}, ${quantity}, ${quantity}, 'COMMITTED', ${`offline:${fileHash}`},
            ${now}::timestamp(3), ${now}::timestamp(3)
          FROM b
          RETURNING id
        )
        INSERT INTO "UsageLedgerEntry" ("tenantId", "licenseId", meter, "window", quantity, "ticketId", "recordedAt")
        SELECT ${tenantId}::uuid, ${activation.licenseId}::uuid, ${meter}, ${window}, ${quantity}, id, ${now}::timestamp(3) FROM t`;
      emit({ ...base, type: 'usage.recorded', subjectType: 'UsageTicket', subjectId: ticketId, payload: { meter, quantity, window, source: 'offline-deactivation' } });
    }
    // An operator may have released the machine already (its activation.released was raised then): the
    // file still reports the offline usage, recorded once, but frees no seat a second time.
    emit({
      ...base,
      type: released ? 'activation.released' : 'activation.deactivation_imported',
      subjectType: 'Activation',
      subjectId: activation.id,
      payload: { reason: 'offline_deactivation', fingerprint: activation.fingerprint, usage: usage.data, ...(offLicense.length ? { unrecorded: offLicense } : {}) },
    });
    if (synced) emit({ ...base, type: 'license.synced', subjectType: 'License', subjectId: activation.licenseId, payload: { revision: activation.license.revision } });
    return { activationId: activation.id, imported: true };
  }));
}
