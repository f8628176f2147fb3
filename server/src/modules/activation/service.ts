import { createHash, randomUUID } from 'node:crypto';
import type { Activation, License, Prisma } from '@tessera/db/client';
import { pauseAfterDeadlock } from '@tessera/db/database';
import semver from 'semver';
import type { AppDeps } from '../../context.ts';
import { ConflictError, type FieldProblem, LicensingError, NotFoundError, ValidationError } from '../../errors.ts';
import { type EventInput, inTransaction, recordEvent, type ServiceContext, type Tx } from '../audit/service.ts';
import { deviceCustomerIs, isDeadlock, isUniqueViolation, NIL_UUID } from '../common/db.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { textProblem } from '../common/validate.ts';
import { parseKey } from '../licenses/keys.ts';
import { graceEndsAt, inGracePeriod } from '../licenses/service.ts';
import { endsHeartbeatTimeout } from '../compliance/service.ts';
import { signerFor, TOKEN_TYPES } from '../signing/service.ts';
import { activationBatcher, activationCallBatcher, type ActivationCallOutcome, type ActivationOutcome, BatchRefused, type Found, heartbeatBatcher, heartbeatCallBatcher, lookupBatcher } from './batched.ts';
import { logFailure } from '../security/log.ts';

// Input limits: anything larger is a ValidationError before the database is touched.
const MAX_FINGERPRINT = 512;
const MAX_COMPONENTS = 64;
const MAX_COMPONENT_KIND = 64;
const MAX_COMPONENT_VALUE = 512;
const MAX_CLIENT_FIELD = 200;
const MAX_IDEMPOTENCY_KEY = 255;
/** When the edition sets no heartbeat interval. */
const DEFAULT_HEARTBEAT_SECONDS = 3600;

export interface Component {
  kind: string;
  value: string;
}
export interface ClientInfo {
  hostname?: string | null;
  platform?: string | null;
  osVersion?: string | null;
  appVersion?: string | null;
}
export interface ActivateInput {
  key: string;
  fingerprint: string;
  components?: Component[] | null;
  client?: ClientInfo | null;
  idempotencyKey?: string | null;
}
export interface HeartbeatInput {
  key: string;
  fingerprint: string;
  revision?: number | null;
  client?: ClientInfo | null;
}
export interface DeactivateInput {
  key: string;
  fingerprint: string;
}
export interface ValidateInput {
  key: string;
  fingerprint?: string | null;
  version?: string | null;
  feature?: string | null;
  /** With a numeric entitlement's feature: the amount wanted (valid when at most the limit). */
  quantity?: number | null;
}

/** The activation row with its license, when the service already holds both (the response needs no read). */
export type LoadedActivation = Activation & { license: License };

export interface ActivateResult {
  activationId: string;
  token: string;
  reused: boolean;
  goodwill: boolean;
  loaded?: LoadedActivation;
}
export interface HeartbeatResult {
  activationId: string;
  updateAvailable: boolean;
  token: string | null;
  nextHeartbeatBy: Date;
  loaded?: LoadedActivation;
}

// ---------------------------------------------------------------------------------------------
// Input checks

function checkFingerprint(p: FieldProblem[], path: string, value: string | null | undefined, required: boolean) {
  if (value === null || value === undefined) {
    if (required) p.push({ path, message: 'is required' });
  } else if (value.trim().length === 0) p.push({ path, message: 'must not be empty' });
  else if (value.length > MAX_FINGERPRINT) p.push({ path, message: `must be at most ${MAX_FINGERPRINT} characters` });
  else checkText(p, path, value);
}

/** Text PostgreSQL can store as given (common/validate.ts textProblem). */
function checkText(p: FieldProblem[], path: string, value: string | null | undefined) {
  const problem = value ? textProblem(value) : null;
  if (problem) p.push({ path, message: problem });
}

function checkClient(p: FieldProblem[], client: ClientInfo | null | undefined) {
  if (!client) return;
  for (const k of ['hostname', 'platform', 'osVersion', 'appVersion'] as const) {
    const v = client[k];
    if (v && v.length > MAX_CLIENT_FIELD) p.push({ path: `client.${k}`, message: `must be at most ${MAX_CLIENT_FIELD} characters` });
    else checkText(p, `client.${k}`, v);
  }
}

function checkComponents(p: FieldProblem[], components: Component[] | null | undefined) {
  if (!components) return;
  if (components.length > MAX_COMPONENTS) {
    p.push({ path: 'components', message: `at most ${MAX_COMPONENTS} components` });
    return;
  }
  components.forEach((c, i) => {
    if (!c.kind || c.kind.length > MAX_COMPONENT_KIND) p.push({ path: `components.${i}.kind`, message: `must be 1 to ${MAX_COMPONENT_KIND} characters` });
    else checkText(p, `components.${i}.kind`, c.kind);
    if (!c.value || c.value.length > MAX_COMPONENT_VALUE) p.push({ path: `components.${i}.value`, message: `must be 1 to ${MAX_COMPONENT_VALUE} characters` });
    else checkText(p, `components.${i}.value`, c.value);
  });
}

function throwIf(p: FieldProblem[]) {
  if (p.length) throw new ValidationError(p);
}

function clientData(client: ClientInfo | null | undefined) {
  return {
    hostname: client?.hostname ?? null,
    platform: client?.platform ?? null,
    osVersion: client?.osVersion ?? null,
    appVersion: client?.appVersion ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Key lookup and rules

const notFound = () => new LicensingError('LICENSE_NOT_FOUND', 'No license matches this key');

/**
 * The license (and this device's latest activation of it) for a key. A malformed key is refused
 * before any database access; the lookup itself is one batched statement (activation/batched.ts).
 */
async function findByKey(ctx: ServiceContext, rawKey: string, fingerprint: string | null, activating = false): Promise<Found> {
  const parsed = parseKey(rawKey);
  if (!parsed) throw notFound();
  const found = await lookupBatcher(ctx.app)({ key: parsed, fingerprint, activating });
  if (!found) throw notFound();
  return found;
}

/**
 * The license's own state, in the fixed order clients rely on:
 * revoked -> suspended -> not yet valid -> expired. (Not found was decided by the lookup.)
 */
function assertLicenseUsable(l: License, now: Date, existingDevice: boolean) {
  if (l.state === 'REVOKED') throw new LicensingError('LICENSE_REVOKED', 'This license has been revoked');
  if (l.state === 'SUSPENDED') throw new LicensingError('LICENSE_SUSPENDED', 'This license is suspended');
  if (l.startsAt && l.startsAt.getTime() > now.getTime()) throw new LicensingError('LICENSE_NOT_YET_VALID', 'This license is not valid yet');
  // A subscription in its grace period keeps the devices it has; it takes no new ones.
  if (l.expiresAt && l.expiresAt.getTime() <= now.getTime() && !(existingDevice && inGracePeriod(l, now))) {
    throw new LicensingError('LICENSE_EXPIRED', 'This license has expired');
  }
}

function versionAllowed(l: License, version: string | null | undefined): boolean {
  if (!l.allowedVersions) return true;
  const v = version ? semver.coerce(version, { includePrerelease: true }) : null;
  return v !== null && semver.satisfies(v, l.allowedVersions, { includePrerelease: true });
}

function assertVersion(l: License, version: string | null | undefined) {
  if (!versionAllowed(l, version)) {
    throw new LicensingError('VERSION_NOT_ALLOWED', `Version ${version ?? '(none)'} is not allowed by this license (${l.allowedVersions})`);
  }
}

const clientActor = (licenseId: string) => ({ type: 'client', id: licenseId });
const SYSTEM_ACTOR = { type: 'system', id: 'inactivity-sweep' };

// ---------------------------------------------------------------------------------------------
// Fingerprint matching

const pairKey = (c: Component) => `${c.kind}\u0000${c.value}`;

/** Whether stored components and presented ones are the same device under the license's rule. */
export function sameDevice(mode: License['fingerprintMatch'], stored: Component[], given: Component[]): boolean {
  if (mode === 'EXACT' || stored.length === 0 || given.length === 0) return false;
  const have = new Set(given.map(pairKey));
  const matches = new Set(stored.map(pairKey).filter((k) => have.has(k))).size;
  if (mode === 'ANY_TWO') return matches >= 2;
  return matches * 2 > new Set(stored.map(pairKey)).size;
}

function componentsDiffer(a: Component[], b: Component[]): boolean {
  const x = [...new Set(a.map(pairKey))].sort();
  const y = [...new Set(b.map(pairKey))].sort();
  return x.length !== y.length || x.some((k, i) => k !== y[i]);
}

// ---------------------------------------------------------------------------------------------
// Tokens

async function activationToken(app: AppDeps, license: License, activationId: string, fingerprint: string) {
  return signerFor(app).sign(
    license.tenantId,
    TOKEN_TYPES.activation,
    {
      sub: license.id,
      activation: activationId,
      fingerprint,
      revision: license.revision,
      licenseType: license.type,
      licenseExpiresAt: license.expiresAt?.toISOString() ?? null,
      graceEndsAt: graceEndsAt(license)?.toISOString() ?? null,
      features: license.features,
      entitlements: license.entitlements,
      maxActivations: license.maxActivations,
    },
    graceEndsAt(license) ?? license.expiresAt,
  );
}

// ---------------------------------------------------------------------------------------------
// Shared SQL

/** Once every ACTIVE device has the current revision, the license is in sync again. */
export async function markSynced(tx: Tx, licenseIds: string[]): Promise<string[]> {
  if (licenseIds.length === 0) return [];
  const rows = await tx.$queryRaw<{ id: string }[]>`
    UPDATE "License" l SET "syncState" = 'SYNCED'
     WHERE l.id = ANY(${licenseIds}::uuid[]) AND l."syncState" = 'PENDING_SYNC'
       AND NOT EXISTS (SELECT 1 FROM "Activation" a
                        WHERE a."licenseId" = l.id AND a.status = 'ACTIVE' AND a."syncedRevision" < l.revision)
    RETURNING l.id`;
  return rows.map((r) => r.id);
}

/**
 * Takes the license's row lock before a transaction writes one of its activations and then the license
 * (its sync state). Activations and the inactivity sweep lock License rows first and then write
 * activations; a transaction taking them the other way round (the activation, then its license)
 * deadlocks with them, one held row each.
 */
async function lockLicense(tx: Tx, licenseId: string): Promise<void> {
  await tx.$queryRaw`SELECT id FROM "License" WHERE id = ${licenseId}::uuid FOR UPDATE`;
}

/** A device among a customer's licenses of one product: what "Activation_device_per_product_key" allows once live. */
interface DeviceOfProduct {
  productId: string;
  customerId: string | null;
  fingerprint: string;
}

/**
 * Locks `licenseId`'s row and those of the customer's other licenses of the product on which the device
 * is live, together and in id order (as the batched inserts lock theirs, so no two calls deadlock),
 * before the device moves to `licenseId`.
 */
async function lockForMove(tx: Tx, licenseId: string, device: DeviceOfProduct): Promise<void> {
  await tx.$queryRaw`
    SELECT l.id FROM "License" l
     WHERE l.id = ${licenseId}::uuid
        OR l.id IN (SELECT a."licenseId" FROM "Activation" a
                     WHERE a."productId" = ${device.productId}::uuid AND a."activeFingerprint" = ${device.fingerprint}
                       AND ${deviceCustomerIs('a."customerId"', device.customerId)})
     ORDER BY l.id FOR UPDATE`;
}

/**
 * Moves the device to license `to`: its other live activations among the customer's licenses of the
 * product (all but `keep`, the one it moves onto, when it has one) are released and their slots freed,
 * audited as moved; a license that waited for such a device to sync is then in sync. Their license rows
 * must be locked already (lockForMove).
 */
async function moveDevice(tx: Tx, emit: (e: EventInput) => void, device: DeviceOfProduct, to: string, now: Date, keep?: string): Promise<void> {
  const moved = await tx.$queryRaw<{ id: string; licenseId: string }[]>`
    WITH moved AS (
      UPDATE "Activation" a SET status = 'RELEASED', "releasedAt" = ${now}::timestamp, "activeFingerprint" = NULL
       WHERE a."productId" = ${device.productId}::uuid AND a."activeFingerprint" = ${device.fingerprint}
         AND ${deviceCustomerIs('a."customerId"', device.customerId)}
         AND a.id <> ${keep ?? NIL_UUID}::uuid
      RETURNING a.id, a."licenseId"
    ), freed AS (
      UPDATE "License" l SET "activationsUsed" = l."activationsUsed" - c.n
        FROM (SELECT "licenseId", count(*)::int AS n FROM moved GROUP BY "licenseId") c
       WHERE l.id = c."licenseId"
    )
    SELECT id::text, "licenseId"::text FROM moved`;
  const actor = clientActor(to);
  for (const m of moved) {
    emit({ type: 'activation.released', subjectType: 'Activation', subjectId: m.id, licenseId: m.licenseId, actor, payload: { reason: 'moved', fingerprint: device.fingerprint, toLicenseId: to } });
  }
  // A license waiting for this device to pick up its change waits no more.
  for (const id of await markSynced(tx, [...new Set(moved.map((m) => m.licenseId))])) {
    emit({ type: 'license.synced', subjectType: 'License', subjectId: id, licenseId: id, actor, payload: {} });
  }
}

/**
 * Releases one ACTIVE activation and frees its slot, in one statement; null when it was not ACTIVE. The
 * license row is locked first (`lk`, a one-time condition of the update), in the order of lockLicense.
 */
/** Releases a live activation; `onlineOnly` (the device's own call) leaves an offline machine's alone. */
async function releaseOne(tx: Tx, activationId: string, tenantId: string, now: Date, onlineOnly = false) {
  const rows = await tx.$queryRaw<{ id: string; licenseId: string; fingerprint: string; syncState: string }[]>`
    WITH lk AS (
      SELECT l.id FROM "License" l JOIN "Activation" a ON a."licenseId" = l.id
       WHERE a.id = ${activationId}::uuid AND a."tenantId" = ${tenantId}::uuid
         FOR UPDATE OF l
    ), r AS (
      UPDATE "Activation" SET status = 'RELEASED', "releasedAt" = ${now}::timestamp, "activeFingerprint" = NULL
       WHERE id = ${activationId}::uuid AND "tenantId" = ${tenantId}::uuid AND status = 'ACTIVE' AND NOT (offline AND ${onlineOnly})
         AND EXISTS (SELECT 1 FROM lk)
      RETURNING id, "licenseId", fingerprint
    ), d AS (
      UPDATE "License" l SET "activationsUsed" = l."activationsUsed" - 1 FROM r WHERE l.id = r."licenseId"
      RETURNING l."syncState"
    )
    SELECT r.id, r."licenseId", r.fingerprint, (SELECT "syncState"::text FROM d) AS "syncState" FROM r`;
  return rows[0] ?? null;
}

// ---------------------------------------------------------------------------------------------
// activate

/** The over-allocation attempt, recorded for compliance (the denial is all its transaction commits). */
function limitDenied(license: License, fingerprint: string): EventInput {
  return {
    type: 'compliance.activation_denied',
    subjectType: 'License',
    subjectId: license.id,
    licenseId: license.id,
    customerId: license.customerId,
    payload: { code: 'ACTIVATION_LIMIT_REACHED', fingerprint, maxActivations: license.maxActivations, goodwillActivations: license.goodwillActivations },
    actor: clientActor(license.id),
  };
}


class DeviceRaced extends Error {}
/** The license stopped taking devices (revoked, suspended, expired) while this call waited for its row. */
class LicenseChanged extends Error {}

/**
 * Prisma gives up on a transaction that waits too long for a pooled connection (under a burst the
 * pool's queue is long). Nothing ran yet, so starting again is safe.
 */
async function startingAgain<T>(fn: () => Promise<T>, tries = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= tries || !/Unable to start a transaction/.test((err as Error)?.message ?? '')) throw err;
    }
  }
}

/**
 * At most a few new activations of one license are in flight per process. The database holds the
 * cap (the license row serialises them anyway, across instances too); the gate only keeps a burst
 * for one license from filling the connection pool with transactions queued on that row lock, where
 * they would time out and starve every other request of connections. A few in flight, not one, so
 * the row lock passes from one transaction to the next inside PostgreSQL without a round trip.
 */
const PER_LICENSE_IN_FLIGHT = 4;
const licenseGates = new Map<string, { active: number; waiting: (() => void)[] }>();
async function gated<T>(licenseId: string, fn: () => Promise<T>): Promise<T> {
  let gate = licenseGates.get(licenseId);
  if (!gate) {
    gate = { active: 0, waiting: [] };
    licenseGates.set(licenseId, gate);
  }
  if (gate.active < PER_LICENSE_IN_FLIGHT) gate.active++;
  else await new Promise<void>((resolve) => gate.waiting.push(resolve)); // a finishing caller hands its place over
  try {
    return await fn();
  } finally {
    const next = gate.waiting.shift();
    if (next) next();
    else if (--gate.active === 0) licenseGates.delete(licenseId);
  }
}

function requestHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

interface Stored extends ActivateResult {
  hash: string;
}

/**
 * What an activation's idempotency record is checked against: the call's parameters, its components as
 * a set (a retry may list them in another order). `legacy` is the hash as records written before that
 * hold it (components in the order given); such records are forgotten within 24 hours (retention.ts).
 */
function activationHashes(key: string, fingerprint: string, components: Component[], client: ReturnType<typeof clientData>) {
  const sorted = [...components].sort((a, b) => (a.kind === b.kind ? (a.value < b.value ? -1 : a.value > b.value ? 1 : 0) : a.kind < b.kind ? -1 : 1));
  return {
    hash: requestHash({ key, fingerprint, components: sorted, client }),
    legacy: requestHash({ key, fingerprint, components, client }),
  };
}

function replay(record: { requestHash: string; response: Prisma.JsonValue }, hash: string, legacy = hash): ActivateResult {
  if (record.requestHash !== hash && record.requestHash !== legacy) {
    throw new LicensingError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was used with different parameters');
  }
  const { activationId, token, reused, goodwill } = record.response as unknown as Stored;
  return { activationId, token, reused, goodwill };
}

/**
 * Binds a device to a license and returns a signed activation token. The activation cap is held
 * by one conditional UPDATE of the license's counter inside the transaction that inserts the
 * activation, and one live activation per device by a unique index: no read-then-write.
 */
export async function activate(ctx: ServiceContext, input: ActivateInput): Promise<ActivateResult> {
  const p: FieldProblem[] = [];
  checkFingerprint(p, 'fingerprint', input.fingerprint, true);
  checkComponents(p, input.components);
  checkClient(p, input.client);
  if (input.idempotencyKey !== null && input.idempotencyKey !== undefined && (input.idempotencyKey.length === 0 || input.idempotencyKey.length > MAX_IDEMPOTENCY_KEY)) {
    p.push({ path: 'idempotencyKey', message: `must be 1 to ${MAX_IDEMPOTENCY_KEY} characters` });
  } else checkText(p, 'idempotencyKey', input.idempotencyKey);
  throwIf(p);
  return activateChecked(ctx, input, 0);
}

/** The answer for an activation the batched insert created. */
function created(outcome: Extract<ActivationOutcome, { kind: 'created' }>, license: License, token: string): ActivateResult {
  return {
    activationId: outcome.activation.id,
    token,
    reused: false,
    goodwill: outcome.goodwill,
    loaded: { ...outcome.activation, license: { ...license, activationsUsed: outcome.activationsUsed } },
  };
}

/** Records the refusal (its compliance event) and gives the error to answer with. */
async function limitReached(ctx: ServiceContext, license: License, fingerprint: string): Promise<LicensingError> {
  await recordEvent(ctx, license.tenantId, limitDenied(license, fingerprint));
  return new LicensingError('ACTIVATION_LIMIT_REACHED', 'This license has no activations left');
}

/**
 * Activation idempotency keys count per license, as usage tickets' do: the clients of a vendor's
 * customers choose them, and one customer's key says nothing of another's.
 */
const idempotencyScope = (licenseId: string) => `activate:${licenseId}`;

/** An air-gapped machine: bound through a request file the vendor imports (offline/service.ts). */
interface OfflineBinding {
  devicePublicKey: Record<string, unknown> | null;
  /** The request file's nonce: each request is used once. */
  nonce: string | null;
}

async function activateChecked(ctx: ServiceContext, input: ActivateInput, attempt: number, offline?: OfflineBinding): Promise<ActivateResult> {
  const now = new Date();
  const { fingerprint, idempotencyKey } = input;
  const components = input.components ?? [];
  const client = clientData(input.client);
  // A first attempt without an idempotency key or offline binding: the lookup and, when the call can
  // only be a new device, its insert in one statement (activation/batched.ts); the rules below decide
  // every call that statement left out, from what it found.
  let tried: ActivationOutcome | null = null;
  let found: Found;
  if (attempt === 0 && !offline && !idempotencyKey) {
    const parsed = parseKey(input.key);
    if (!parsed) throw notFound();
    let call: ActivationCallOutcome | null;
    try {
      call = await activationCallBatcher(ctx.app)({ key: parsed, fingerprint, components, client, activationId: randomUUID(), requestId: ctx.requestId });
    } catch (err) {
      // Its statement was abandoned, having written nothing: the call is decided on its own.
      if (err instanceof BatchRefused) return activateChecked(ctx, input, attempt + 1, offline);
      throw err;
    }
    if (!call) throw notFound();
    found = call.found;
    tried = call.outcome;
  } else {
    found = await findByKey(ctx, input.key, fingerprint, true);
  }
  const { license, activation, tokenKey, holdsOtherLicense } = found;
  const tenantId = license.tenantId;
  const actor = clientActor(license.id);
  if (tried?.kind === 'created') {
    // Signed after the insert here (the license was only known from the statement's lookup).
    const token = await activationToken(ctx.app, license, tried.activation.id, fingerprint);
    return created(tried, license, token);
  }

  const { hash, legacy } = idempotencyKey ? activationHashes(parseKey(input.key)!.key, fingerprint, components, client) : { hash: '', legacy: '' };
  if (idempotencyKey) {
    const prior = await ctx.prisma.idempotencyRecord.findUnique({
      where: { tenantId_scope_key: { tenantId, scope: idempotencyScope(license.id), key: idempotencyKey } },
    });
    if (prior) return replay(prior, hash, legacy);
  }

  // The device's live activation: under this fingerprint, or (fuzzy matching) the one its components
  // recognise. Found before the rules: a subscription in its grace period keeps the devices it has.
  let live = activation?.status === 'ACTIVE' ? activation : null;
  if (!live && license.fingerprintMatch !== 'EXACT' && components.length > 0) {
    // Only live devices sharing at least one component can match; the database narrows them down.
    // A used token key recognises its own device only.
    const shared = components.map((c) => JSON.stringify([{ kind: c.kind, value: c.value }]));
    const bound = tokenKey?.activationId ?? null;
    const candidates = await ctx.prisma.$queryRaw<{ id: string; components: Component[] }[]>`
      SELECT id, components FROM "Activation"
       WHERE "licenseId" = ${license.id}::uuid AND status = 'ACTIVE' AND components @> ANY(${shared}::jsonb[])
         AND (${bound}::uuid IS NULL OR id = ${bound}::uuid)`;
    const match = candidates.find((a) => sameDevice(license.fingerprintMatch, a.components, components));
    live = match ? await ctx.prisma.activation.findUnique({ where: { id: match.id } }) : null;
  }

  // Rule order: license state (revoked -> suspended -> not yet valid -> expired) -> deployment mode -> version -> limits.
  assertLicenseUsable(license, now, live !== null);
  if (!offline && license.deploymentMode === 'OFFLINE') {
    throw new LicensingError('ONLINE_ACTIVATION_NOT_ALLOWED', 'This license activates offline only');
  }
  if (offline && !license.allowOffline) {
    throw new LicensingError('OFFLINE_ACTIVATION_NOT_ALLOWED', 'This license does not allow offline activation');
  }
  if (!versionAllowed(license, client.appVersion)) {
    await recordEvent(ctx, tenantId, {
      type: 'compliance.activation_denied',
      subjectType: 'License',
      subjectId: license.id,
      licenseId: license.id,
      customerId: license.customerId,
      payload: { code: 'VERSION_NOT_ALLOWED', fingerprint, appVersion: client.appVersion, allowedVersions: license.allowedVersions },
      actor,
    });
    assertVersion(license, client.appVersion);
  }

  // The common case, a new device on a license key, goes through the batched statement; anything it
  // cannot decide alone (token keys, idempotency records, fuzzy matching, moving from another license,
  // offline binding, a concurrent activation of the same device) takes the one-call path below.
  const simple =
    attempt === 0 && !offline && !tokenKey && !idempotencyKey && !holdsOtherLicense && activation?.status !== 'ACTIVE' &&
    (license.fingerprintMatch === 'EXACT' || components.length === 0);
  if (tried?.kind === 'denied') throw await limitReached(ctx, license, fingerprint);
  // Left out by the one-statement path (a license with a version rule, say): the batched insert alone.
  if (simple && !tried) {
    const activationId = randomUUID();
    const token = await activationToken(ctx.app, license, activationId, fingerprint);
    const outcome = await activationBatcher(ctx.app)({
      activationId,
      tenantId,
      licenseId: license.id,
      customerId: license.customerId,
      fingerprint,
      components,
      client,
      revision: license.revision,
      requestId: ctx.requestId,
    });
    if (outcome.kind === 'created') return created(outcome, license, token);
    if (outcome.kind === 'denied') throw await limitReached(ctx, license, fingerprint);
  }

  try {
    if (live) return await reuse(ctx, license, live, { fingerprint, components, client, idempotencyKey, hash, tokenKey }, offline);
    if (tokenKey?.usedAt) throw new LicensingError('TOKEN_ALREADY_USED', 'This token key has already been used');
    const activationId = randomUUID();
    // An offline machine gets a license file instead, signed by the caller once the binding holds.
    const token = offline ? '' : await activationToken(ctx.app, license, activationId, fingerprint);
    const attemptActivation = () => inTransaction(ctx, tenantId, async (tx, emit): Promise<ActivateResult | null> => {
      const device = { productId: license.productId, customerId: license.customerId, fingerprint };
      if (holdsOtherLicense) await lockForMove(tx, license.id, device);
      // Take a slot: the cap, held by the license row, which must still take devices once locked, at
      // the terms the token was signed with and the device is recorded as having.
      const [slot] = await tx.$queryRaw<{ used: number; max: number | null }[]>`
        UPDATE "License" SET "activationsUsed" = "activationsUsed" + 1
         WHERE id = ${license.id}::uuid
           AND ("maxActivations" IS NULL OR "activationsUsed" < "maxActivations" + "goodwillActivations")
           AND state = 'ACTIVE' AND ("startsAt" IS NULL OR "startsAt" <= ${now}::timestamp) AND ("expiresAt" IS NULL OR "expiresAt" > ${now}::timestamp)
           AND revision = ${license.revision}
        RETURNING "activationsUsed" AS used, "maxActivations" AS max`;
      if (!slot) {
        // No slot: the cap, or the license changed since it was read. A new statement sees the row as
        // committed now; a change goes back to the rules (a fresh lookup), which answer with its code
        // or, for new terms, activate the device on them (a token and revision of the terms it replaced
        // would leave a device behind a license marked in sync).
        const [current] = await tx.$queryRaw<{ usable: boolean }[]>`
          SELECT state = 'ACTIVE' AND ("startsAt" IS NULL OR "startsAt" <= ${now}::timestamp)
                 AND ("expiresAt" IS NULL OR "expiresAt" > ${now}::timestamp) AND revision = ${license.revision} AS usable
            FROM "License" WHERE id = ${license.id}::uuid`;
        if (!current?.usable) throw new LicenseChanged();
        // Nothing was written: the denial is all this transaction commits.
        emit(limitDenied(license, fingerprint));
        return null;
      }
      // The device's activations of the customer's other licenses of this product (their rows locked
      // above) are released before its new one goes in: the index allows one of them live.
      if (holdsOtherLicense) await moveDevice(tx, emit, device, license.id, now);
      // One live activation per device on this license, and per device among the customer's licenses of
      // this product (both unique indexes): a device that went live meanwhile on either refuses the row,
      // and the call runs again (and reuses it, or moves it).
      const inserted = await tx.$executeRaw`
        INSERT INTO "Activation" (id, "tenantId", "licenseId", fingerprint, "activeFingerprint", components, status, goodwill,
                                  hostname, platform, "osVersion", "appVersion", "syncedRevision", "activatedAt", offline, "devicePublicKey",
                                  "productId", "customerId")
        VALUES (${activationId}::uuid, ${tenantId}::uuid, ${license.id}::uuid, ${fingerprint}, ${fingerprint},
                ${JSON.stringify(components)}::jsonb, 'ACTIVE', ${slot.max !== null && slot.used > slot.max},
                ${client.hostname}, ${client.platform}, ${client.osVersion}, ${client.appVersion}, ${license.revision}, ${now}::timestamp,
                ${!!offline}, ${offline?.devicePublicKey ? JSON.stringify(offline.devicePublicKey) : null}::jsonb,
                ${license.productId}::uuid, ${license.customerId}::uuid)
        ON CONFLICT DO NOTHING`;
      if (inserted === 0) throw new DeviceRaced();
      if (offline) await useRequest(tx, tenantId, offline.nonce, activationId);
      if (tokenKey) {
        const n = await tx.$executeRaw`
          UPDATE "TokenKey" SET "usedAt" = ${now}::timestamp, "activationId" = ${activationId}::uuid
           WHERE id = ${tokenKey.id}::uuid AND "usedAt" IS NULL`;
        if (n === 0) throw new LicensingError('TOKEN_ALREADY_USED', 'This token key has already been used');
      }
      const { used, max } = slot;
      const result: ActivateResult = { activationId, token, reused: false, goodwill: max !== null && used > max };
      if (idempotencyKey) {
        await tx.idempotencyRecord.create({
          data: { tenantId, scope: idempotencyScope(license.id), key: idempotencyKey, requestHash: hash, response: result as unknown as Prisma.InputJsonValue },
        });
      }
      const goodwill = result.goodwill;
      const base = { licenseId: license.id, customerId: license.customerId, actor };
      emit({
        ...base,
        type: 'activation.created',
        subjectType: 'Activation',
        subjectId: activationId,
        payload: { fingerprint, goodwill, activationsUsed: used, maxActivations: max, tokenKeyId: tokenKey?.id ?? null, appVersion: client.appVersion },
      });
      if (goodwill) {
        emit({ ...base, type: 'compliance.goodwill_used', subjectType: 'Activation', subjectId: activationId, payload: { activationsUsed: used, maxActivations: max, goodwillActivations: license.goodwillActivations } });
      }
      return result;
    });
    const result = await gated(license.id, () => startingAgain(attemptActivation));
    if (!result) throw new LicensingError('ACTIVATION_LIMIT_REACHED', 'This license has no activations left');
    return result;
  } catch (err) {
    // A concurrent request activated this device (or stored this idempotency key, a reuse's too) first:
    // answer as it did.
    // Two devices swapping licenses of one product can deadlock on the two license rows; PostgreSQL
    // aborts one, which simply runs again.
    const retry = err instanceof DeviceRaced || err instanceof LicenseChanged || isUniqueViolation(err) || isDeadlock(err);
    if (!retry || attempt >= 2) throw err;
    if (isDeadlock(err)) await pauseAfterDeadlock(attempt);
    return activateChecked(ctx, input, attempt + 1, offline);
  }
}

async function reuse(
  ctx: ServiceContext,
  license: License,
  live: Activation,
  given: {
    fingerprint: string;
    components: Component[];
    client: ReturnType<typeof clientData>;
    idempotencyKey?: string | null;
    hash: string;
    /** The call's token key: one not used yet is bound to this device (its key from now on). */
    tokenKey?: Found['tokenKey'];
  },
  offline?: OfflineBinding,
): Promise<ActivateResult> {
  const stored = live.components as unknown as Component[];
  const changed = live.fingerprint !== given.fingerprint || (given.components.length > 0 && componentsDiffer(stored, given.components));
  const token = offline ? '' : await activationToken(ctx.app, license, live.id, given.fingerprint);
  const actor = clientActor(license.id);
  const result: ActivateResult = { activationId: live.id, token, reused: true, goodwill: live.goodwill };
  // A device recognised by its components under a new fingerprint, live under that fingerprint on another
  // of the customer's licenses of this product (it went there as a new device after the change): it moves
  // here, as a new activation would, so the fingerprint it presents is live on one license only.
  const device = { productId: live.productId, customerId: live.customerId, fingerprint: given.fingerprint };
  const renamed = live.fingerprint !== given.fingerprint;
  return inTransaction(ctx, license.tenantId, async (tx, emit) => {
    if (renamed) {
      await lockForMove(tx, license.id, device);
      await moveDevice(tx, emit, device, license.id, new Date(), live.id);
    } else if (license.syncState === 'PENDING_SYNC') await lockLicense(tx, license.id);
    const data: Prisma.ActivationUpdateManyMutationInput = {
      syncedRevision: license.revision,
      ...Object.fromEntries(Object.entries(given.client).filter(([, v]) => v !== null)),
    };
    // The device itself called: it is alive, whatever its heartbeats did (an offline request comes
    // through the vendor, and says nothing of when the machine last ran).
    if (!offline) data.lastHeartbeatAt = new Date();
    if (changed) {
      if (given.components.length > 0) data.components = given.components as unknown as Prisma.InputJsonValue;
      data.fingerprint = given.fingerprint;
      data.activeFingerprint = given.fingerprint;
    }
    if (offline) {
      // A reinstalled machine asks again with a new device key: its deactivation file is signed with that one.
      data.offline = true;
      if (offline.devicePublicKey) data.devicePublicKey = offline.devicePublicKey as Prisma.InputJsonValue;
      await useRequest(tx, license.tenantId, offline.nonce, live.id);
    }
    const n = await tx.activation.updateMany({ where: { id: live.id, status: 'ACTIVE' }, data });
    if (n.count === 0) throw new LicensingError('ACTIVATION_RELEASED', 'This activation was released; activate again');
    const binds = given.tokenKey && !given.tokenKey.activationId ? given.tokenKey : null;
    if (binds) {
      // The device now answers to this token key too (a token key acts on its own device only). Used
      // meanwhile by another call: that call's outcome decides this one (the lookup runs again).
      const bound = await tx.$executeRaw`
        UPDATE "TokenKey" SET "usedAt" = ${new Date()}::timestamp, "activationId" = ${live.id}::uuid
         WHERE id = ${binds.id}::uuid AND "activationId" IS NULL`;
      if (bound === 0) throw new DeviceRaced();
    }
    if (license.syncState === 'PENDING_SYNC') await markSynced(tx, [license.id]);
    if (given.idempotencyKey) {
      await tx.idempotencyRecord.create({
        data: { tenantId: license.tenantId, scope: idempotencyScope(license.id), key: given.idempotencyKey, requestHash: given.hash, response: result as unknown as Prisma.InputJsonValue },
      });
    }
    const base = { subjectType: 'Activation', subjectId: live.id, licenseId: license.id, customerId: license.customerId, actor };
    if (changed) {
      emit({
        ...base,
        type: 'device.components_changed',
        payload: {
          fromFingerprint: live.fingerprint,
          toFingerprint: given.fingerprint,
          removed: stored.filter((c) => !given.components.some((g) => pairKey(g) === pairKey(c))),
          added: given.components.filter((g) => !stored.some((c) => pairKey(g) === pairKey(c))),
        },
      });
    }
    emit({ ...base, type: 'activation.reused', payload: { fingerprint: given.fingerprint, ...(binds ? { tokenKeyId: binds.id } : {}) } });
    return result;
  });
}

// ---------------------------------------------------------------------------------------------
// heartbeat

export async function heartbeat(ctx: ServiceContext, input: HeartbeatInput): Promise<HeartbeatResult> {
  const p: FieldProblem[] = [];
  checkFingerprint(p, 'fingerprint', input.fingerprint, true);
  checkClient(p, input.client);
  if (input.revision !== null && input.revision !== undefined && input.revision < 0) p.push({ path: 'revision', message: 'must not be negative' });
  throwIf(p);

  const parsed = parseKey(input.key);
  if (!parsed) throw notFound();
  const client = clientData(input.client);
  // The lookup, and the write when the call can only succeed (activation/batched.ts); else the rules
  // below refuse it or it is recorded on the path that handles what that statement leaves out.
  const call = await heartbeatCallBatcher(ctx.app)({ key: parsed, fingerprint: input.fingerprint, revision: input.revision ?? null, client, requestId: ctx.requestId });
  if (!call) throw notFound();
  const { license, activation } = call;
  const seconds = license.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
  if (call.recorded && activation) {
    const updateAvailable = (call.knownRevision ?? activation.syncedRevision) < license.revision;
    const token = updateAvailable ? await activationToken(ctx.app, license, activation.id, activation.fingerprint) : null;
    return { activationId: activation.id, updateAvailable, token, nextHeartbeatBy: new Date(call.at.getTime() + seconds * 1000), loaded: { ...activation, license } };
  }

  const now = new Date();
  assertLicenseUsable(license, now, activation?.status === 'ACTIVE');
  if (input.client?.appVersion) assertVersion(license, input.client.appVersion);
  if (!activation) throw new LicensingError('NOT_ACTIVATED', 'This device is not activated');
  if (activation.status !== 'ACTIVE') throw new LicensingError('ACTIVATION_RELEASED', 'This activation was released; activate again');

  const known = input.revision ?? activation.syncedRevision;
  const updateAvailable = known < license.revision;
  const token = updateAvailable ? await activationToken(ctx.app, license, activation.id, activation.fingerprint) : null;
  const actor = clientActor(license.id);
  const payload: Record<string, unknown> = { appVersion: client.appVersion, osVersion: client.osVersion, revision: license.revision, updateAvailable };
  // Back from a heartbeat timeout: said in the event, so that the console reads its compliance counts again.
  const seenBefore = activation.lastHeartbeatAt ?? activation.activatedAt;
  if (await endsHeartbeatTimeout(ctx.prisma, license.tenantId, license.heartbeatSeconds, { offline: activation.offline, seenBefore }, now)) payload.resumed = true;

  if (license.syncState !== 'PENDING_SYNC') {
    // Nothing to settle on the license: the batched statement records it (activation/batched.ts).
    const { activation: updated, at } = await heartbeatBatcher(ctx.app)({
      activationId: activation.id,
      tenantId: license.tenantId,
      licenseId: license.id,
      customerId: license.customerId,
      revision: license.revision,
      client,
      requestId: ctx.requestId,
      payload,
    });
    if (!updated) throw new LicensingError('ACTIVATION_RELEASED', 'This activation was released; activate again');
    return { activationId: activation.id, updateAvailable, token, nextHeartbeatBy: new Date(at.getTime() + seconds * 1000), loaded: { ...updated, license } };
  }

  await inTransaction(ctx, license.tenantId, async (tx, emit) => {
    // The device either confirms the current revision or receives it now, and markSynced below writes
    // the license: its row is locked before the activation's.
    await lockLicense(tx, license.id);
    const rows = await tx.$queryRaw<{ id: string }[]>`
      WITH a AS (
        UPDATE "Activation" SET "lastHeartbeatAt" = ${now}::timestamp,
               hostname = COALESCE(${client.hostname}, hostname), platform = COALESCE(${client.platform}, platform),
               "osVersion" = COALESCE(${client.osVersion}, "osVersion"), "appVersion" = COALESCE(${client.appVersion}, "appVersion"),
               "syncedRevision" = GREATEST("syncedRevision", ${license.revision})
         WHERE id = ${activation.id}::uuid AND status = 'ACTIVE'
        RETURNING id, "tenantId", "licenseId", "appVersion", "osVersion", platform
      ), s AS (
        INSERT INTO "HeartbeatSample" ("tenantId", "licenseId", "activationId", at, "appVersion", "osVersion", platform)
        SELECT "tenantId", "licenseId", id, ${now}::timestamp, "appVersion", "osVersion", platform FROM a
      )
      SELECT id FROM a`;
    if (rows.length === 0) throw new LicensingError('ACTIVATION_RELEASED', 'This activation was released; activate again');
    const synced = license.syncState === 'PENDING_SYNC' ? await markSynced(tx, [license.id]) : [];
    const base = { licenseId: license.id, customerId: license.customerId, actor };
    emit({
      ...base,
      type: 'device.heartbeat',
      subjectType: 'Activation',
      subjectId: activation.id,
      payload,
    });
    if (synced.length) emit({ ...base, type: 'license.synced', subjectType: 'License', subjectId: license.id, payload: { revision: license.revision } });
  });

  return { activationId: activation.id, updateAvailable, token, nextHeartbeatBy: new Date(now.getTime() + seconds * 1000) };
}

// ---------------------------------------------------------------------------------------------
// deactivate / releaseActivation

/** The client gives its seat back. Allowed whatever the license state: freeing a device never hurts. */
export async function deactivate(ctx: ServiceContext, input: DeactivateInput): Promise<string> {
  const p: FieldProblem[] = [];
  checkFingerprint(p, 'fingerprint', input.fingerprint, true);
  throwIf(p);
  const { license, activation } = await findByKey(ctx, input.key, input.fingerprint);
  if (!activation) throw new LicensingError('NOT_ACTIVATED', 'This device is not activated');
  if (activation.status !== 'ACTIVE') throw new LicensingError('ACTIVATION_RELEASED', 'This activation was already released');
  // An air-gapped machine's license file is its seat, and keeps working offline: only proof that it was
  // removed (its deactivation file, signed by the device key) or an operator frees the seat.
  if (activation.offline) {
    throw new LicensingError('ONLINE_ACTIVATION_NOT_ALLOWED', 'This device was activated offline: import its deactivation file, or ask the vendor to release it');
  }
  return inTransaction(ctx, license.tenantId, async (tx, emit) => {
    const released = await releaseOne(tx, activation.id, license.tenantId, new Date(), true);
    if (!released) throw new LicensingError('ACTIVATION_RELEASED', 'This activation was already released');
    const synced = released.syncState === 'PENDING_SYNC' ? await markSynced(tx, [license.id]) : [];
    const base = { licenseId: license.id, customerId: license.customerId, actor: clientActor(license.id) };
    emit({ ...base, type: 'activation.released', subjectType: 'Activation', subjectId: activation.id, payload: { reason: 'deactivated', fingerprint: activation.fingerprint } });
    if (synced.length) emit({ ...base, type: 'license.synced', subjectType: 'License', subjectId: license.id, payload: { revision: license.revision } });
    return activation.id;
  });
}

/** An operator frees a device's seat (lost machine, reinstall). */
export async function releaseActivation(ctx: ServiceContext, activationId: string): Promise<string> {
  const { tenantId } = tenantWhere(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const released = await releaseOne(tx, activationId, tenantId, new Date());
    if (!released) {
      const existing = await tx.activation.findFirst({ where: { id: activationId, tenantId }, select: { status: true } });
      if (!existing) throw new NotFoundError('activation');
      throw new ConflictError(`this activation is ${existing.status.toLowerCase()}, its seat is already free`);
    }
    const synced = released.syncState === 'PENDING_SYNC' ? await markSynced(tx, [released.licenseId]) : [];
    emit({ type: 'activation.released', subjectType: 'Activation', subjectId: activationId, licenseId: released.licenseId, payload: { reason: 'released_by_admin', fingerprint: released.fingerprint } });
    if (synced.length) emit({ type: 'license.synced', subjectType: 'License', subjectId: released.licenseId, licenseId: released.licenseId, payload: {} });
    return activationId;
  });
}

// ---------------------------------------------------------------------------------------------
// validateLicense

export interface ValidationResult {
  valid: boolean;
  code: LicensingError['code'] | null;
  licenseId: string | null;
  /** The license row as read for this answer. */
  license?: License;
}

/** Read-only check; the same rule order as activation, then the device, then the feature. */
export async function validateLicense(ctx: ServiceContext, input: ValidateInput): Promise<ValidationResult> {
  const p: FieldProblem[] = [];
  checkFingerprint(p, 'fingerprint', input.fingerprint, false);
  if (input.version && input.version.length > MAX_CLIENT_FIELD) p.push({ path: 'version', message: `must be at most ${MAX_CLIENT_FIELD} characters` });
  else checkText(p, 'version', input.version);
  if (input.feature && input.feature.length > 64) p.push({ path: 'feature', message: 'must be at most 64 characters' });
  else checkText(p, 'feature', input.feature);
  if (input.quantity !== null && input.quantity !== undefined) {
    if (!input.feature) p.push({ path: 'quantity', message: 'needs a feature' });
    else if (input.quantity < 0) p.push({ path: 'quantity', message: 'must not be negative' });
  }
  throwIf(p);
  let found: Found;
  try {
    found = await findByKey(ctx, input.key, input.fingerprint ?? null);
  } catch (err) {
    if (err instanceof LicensingError) return { valid: false, code: err.code, licenseId: null };
    throw err;
  }
  const { license, activation } = found;
  try {
    // Without a device, the license as such: in its grace period it is still valid for the devices it has.
    assertLicenseUsable(license, new Date(), !input.fingerprint || activation?.status === 'ACTIVE');
    if (input.version) assertVersion(license, input.version);
    if (input.fingerprint) {
      if (!activation) throw new LicensingError('NOT_ACTIVATED', 'This device is not activated');
      if (activation.status !== 'ACTIVE') throw new LicensingError('ACTIVATION_RELEASED', 'This activation was released');
    }
    if (input.feature) {
      // A numeric entitlement entitles when its limit is above 0 and covers the quantity asked (default 1);
      // an on/off feature has no limit, so any quantity passes.
      const limit = (license.entitlements as { feature: string; limit: number }[]).find((e) => e.feature === input.feature)?.limit;
      const entitled = limit === undefined ? license.features.includes(input.feature) : (input.quantity ?? 1) <= limit && limit > 0;
      if (!entitled) throw new LicensingError('FEATURE_NOT_ENTITLED', 'This license does not include the feature (or not that many)');
    }
  } catch (err) {
    if (err instanceof LicensingError) return { valid: false, code: err.code, licenseId: license.id, license };
    throw err;
  }
  return { valid: true, code: null, licenseId: license.id, license };
}

// ---------------------------------------------------------------------------------------------
// Inactivity reclamation

/**
 * Devices silent for longer than their license's `inactivityReclaimSeconds` become INACTIVE and
 * free their slot. One atomic UPDATE ... RETURNING per tenant: when several instances sweep at
 * once, each row is reclaimed (and its slot freed) exactly once.
 */
export async function reclaimInactive(app: AppDeps, now = new Date()): Promise<number> {
  // Offline (air-gapped) devices never send heartbeats: their license file is their seat, freed only
  // by a deactivation file or an operator.
  const tenants = await app.prisma.$queryRaw<{ tenantId: string }[]>`
    SELECT DISTINCT a."tenantId" FROM "Activation" a JOIN "License" l ON l.id = a."licenseId"
     WHERE a.status = 'ACTIVE' AND NOT a.offline AND l."inactivityReclaimSeconds" IS NOT NULL
       AND COALESCE(a."lastHeartbeatAt", a."activatedAt") < ${now}::timestamp - make_interval(secs => l."inactivityReclaimSeconds")`;
  let total = 0;
  const ctx: ServiceContext = { app, prisma: app.prisma, actor: { kind: 'anonymous' }, requestId: 'inactivity-sweep' };
  for (const { tenantId } of tenants) {
    total += await inTransaction(ctx, tenantId, async (tx, emit) => {
      // The licenses whose counters this frees, locked first and in id order, as activations lock
      // theirs: a sweep and a batch of activations never wait on each other in a circle.
      await tx.$queryRaw`
        SELECT l.id FROM "License" l
         WHERE l."tenantId" = ${tenantId}::uuid AND l."inactivityReclaimSeconds" IS NOT NULL
           AND EXISTS (SELECT 1 FROM "Activation" a
                        WHERE a."licenseId" = l.id AND a.status = 'ACTIVE' AND NOT a.offline
                          AND COALESCE(a."lastHeartbeatAt", a."activatedAt") < ${now}::timestamp - make_interval(secs => l."inactivityReclaimSeconds"))
         ORDER BY l.id FOR UPDATE`;
      const rows = await tx.$queryRaw<{ id: string; licenseId: string; fingerprint: string; lastSeenAt: Date }[]>`
        WITH r AS (
          UPDATE "Activation" a SET status = 'INACTIVE', "activeFingerprint" = NULL
            FROM "License" l
           WHERE l.id = a."licenseId" AND a."tenantId" = ${tenantId}::uuid AND a.status = 'ACTIVE' AND NOT a.offline
             AND l."inactivityReclaimSeconds" IS NOT NULL
             AND COALESCE(a."lastHeartbeatAt", a."activatedAt") < ${now}::timestamp - make_interval(secs => l."inactivityReclaimSeconds")
          RETURNING a.id, a."licenseId", a.fingerprint, COALESCE(a."lastHeartbeatAt", a."activatedAt") AS "lastSeenAt"
        ), d AS (
          UPDATE "License" l SET "activationsUsed" = l."activationsUsed" - c.n
            FROM (SELECT "licenseId", count(*)::int AS n FROM r GROUP BY "licenseId") c
           WHERE l.id = c."licenseId"
        )
        SELECT id, "licenseId", fingerprint, "lastSeenAt" FROM r`;
      for (const r of rows) {
        emit({
          type: 'activation.reclaimed',
          subjectType: 'Activation',
          subjectId: r.id,
          licenseId: r.licenseId,
          actor: SYSTEM_ACTOR,
          payload: { fingerprint: r.fingerprint, lastSeenAt: r.lastSeenAt },
        });
      }
      const licenseIds = [...new Set(rows.map((r) => r.licenseId))];
      for (const id of await markSynced(tx, licenseIds)) {
        emit({ type: 'license.synced', subjectType: 'License', subjectId: id, licenseId: id, actor: SYSTEM_ACTOR, payload: {} });
      }
      return rows.length;
    });
  }
  return total;
}

/** Runs the sweep every `intervalMs` until stopped; a failed sweep is logged and retried next time. */
export function startReclamation(app: AppDeps, intervalMs: number): () => Promise<void> {
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = reclaimInactive(app)
      .catch((err) => logFailure(app, 'activation: inactivity sweep failed', err))
      .finally(() => {
        running = null;
      });
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

// ---------------------------------------------------------------------------------------------
// Offline binding (used by offline/service.ts)

/** Records an offline request's nonce; a replayed request file is refused. */
async function useRequest(tx: Tx, tenantId: string, nonce: string | null, activationId: string) {
  if (!nonce) return;
  const rows = await tx.$queryRaw<{ nonce: string }[]>`
    INSERT INTO "OfflineRequest" ("tenantId", nonce, "activationId") VALUES (${tenantId}::uuid, ${nonce}, ${activationId}::uuid)
    ON CONFLICT DO NOTHING RETURNING nonce`;
  if (rows.length === 0) throw new LicensingError('REQUEST_EXPIRED', 'This request file was already used; make a new one');
}

/**
 * Binds an air-gapped machine to a license: the same rules, cap, fingerprint matching and device reuse
 * as an online activation (one code path), but allowed only where the license allows offline use.
 */
export async function bindOfflineDevice(
  ctx: ServiceContext,
  license: License,
  device: {
    fingerprint: string;
    components: Component[];
    client: ClientInfo;
    devicePublicKey: Record<string, unknown> | null;
    nonce: string | null;
    /** The token key the request was made with, if not the license key. */
    tokenKeyId: string | null;
  },
): Promise<{ activationId: string; fingerprint: string; reused: boolean }> {
  const p: FieldProblem[] = [];
  checkFingerprint(p, 'fingerprint', device.fingerprint, true);
  checkComponents(p, device.components);
  checkClient(p, device.client);
  throwIf(p);
  const key = device.tokenKeyId
    ? (await ctx.prisma.tokenKey.findUniqueOrThrow({ where: { id: device.tokenKeyId }, select: { key: true } })).key
    : license.key;
  const result = await activateChecked(
    ctx,
    { key, fingerprint: device.fingerprint, components: device.components, client: device.client },
    0,
    { devicePublicKey: device.devicePublicKey, nonce: device.nonce },
  );
  return { activationId: result.activationId, fingerprint: device.fingerprint, reused: result.reused };
}

/**
 * Frees an offline activation inside the caller's transaction (deactivation file import). Returns
 * whether it was live, and whether its license, waiting for its devices to pick up a change, is now
 * in sync (the caller records `license.synced`).
 */
export async function releaseOfflineActivation(tx: Tx, activationId: string, tenantId: string, now: Date): Promise<{ released: boolean; synced: boolean }> {
  const released = await releaseOne(tx, activationId, tenantId, now);
  if (!released) return { released: false, synced: false };
  const synced = released.syncState === 'PENDING_SYNC' ? await markSynced(tx, [released.licenseId]) : [];
  return { released: true, synced: synced.length > 0 };
}
