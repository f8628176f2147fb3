import { randomBytes, randomUUID } from 'node:crypto';
import type { WebhookDelivery, WebhookEndpoint } from '@tessera/db/client';
import { z } from 'zod';
import type { AppDeps } from '../../context.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import { actorOf, diff, inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import { EVENT_TYPES } from '../audit/event-types.ts';
import { parse } from '../common/validate.ts';
import { masterKeyOf, seal, unseal } from '../signing/service.ts';
import { wakeDispatchers } from './dispatcher.ts';
import { hostOf, isPrivateAddress, resolveHost } from './targets.ts';

export const MAX_ENDPOINTS_PER_TENANT = 20;
/** Room for every event type listed one by one (EVENT_TYPES), with some to spare. */
const MAX_EVENT_TYPES = 100;
const MAX_KEEP_PREVIOUS_HOURS = 7 * 24;

const KNOWN = new Set<string>(EVENT_TYPES);
const RESOURCES = new Set(EVENT_TYPES.map((t) => t.split('.')[0]!));
const PATTERN = /^([a-z][a-z0-9_]*)\.(\*|[a-z][a-z0-9_]*)$/;

/**
 * Why a pattern is refused, or null when it is "*", "<resource>.*" of a known resource or an event type
 * Tessera emits (audit/event-types.ts). Anything else is a typo that would silently receive nothing.
 */
export function eventTypeProblem(pattern: string): string | null {
  if (pattern === '*') return null;
  const m = PATTERN.exec(pattern);
  if (!m) return 'must be "*", "<resource>.*" or an event type such as "license.created"';
  const [, resource, action] = m as unknown as [string, string, string];
  if (!RESOURCES.has(resource)) return `unknown resource "${resource}" (known: ${[...RESOURCES].join(', ')})`;
  if (action !== '*' && !KNOWN.has(pattern)) {
    const actions = EVENT_TYPES.filter((t) => t.startsWith(`${resource}.`)).map((t) => t.slice(resource.length + 1));
    return `unknown event type "${pattern}" (${resource} events: ${actions.join(', ')}; or ${resource}.*)`;
  }
  return null;
}

/** Whether an endpoint subscribed to `patterns` receives an event of `type`. */
export function matchesEventType(patterns: readonly string[], type: string): boolean {
  if (patterns.length === 0) return true;
  const resource = type.split('.')[0];
  return patterns.some((p) => p === '*' || p === type || p === `${resource}.*`);
}

/**
 * The audit events that say a delivery was queued directly for an endpoint (a test, a replay). That
 * endpoint gets the delivery itself; sent the audit event too, a receiver subscribed to all events (or
 * to webhook.*) would get two requests for one click. Other endpoints are sent it as any other event.
 */
const DIRECT_DELIVERY_EVENTS = new Set<string>(['webhook.test_sent', 'webhook.replayed']);

/** Whether `event` announces a delivery queued directly for the endpoint `endpointId`: then it is not sent to it. */
export function notifiesOwnDelivery(event: { type: string; subjectType: string; subjectId: string }, endpointId: string): boolean {
  return DIRECT_DELIVERY_EVENTS.has(event.type) && event.subjectType === 'WebhookEndpoint' && event.subjectId === endpointId;
}

// ---------------------------------------------------------------------------------------------
// Secrets: whsec_..., shown once, stored encrypted with the master key (as private signing keys are).

/** The app's master key (the one private signing keys are sealed with). */
const masterKey = (deps: AppDeps): Buffer => masterKeyOf(deps).key;

/** The endpoint id is authenticated data: a sealed secret cannot be moved to another endpoint's row. */
const secretAad = (endpointId: string) => `webhook:${endpointId}`;

function newSecret(deps: AppDeps, endpointId: string) {
  const secret = `whsec_${randomBytes(32).toString('base64url')}`;
  return { secret, encrypted: seal(masterKey(deps), secret, secretAad(endpointId)), prefix: secret.slice(0, 12) };
}

/** The secrets a delivery is signed with now: the current one, and the previous one while it is kept. */
export function signingSecrets(deps: AppDeps, endpoint: Pick<WebhookEndpoint, 'id' | 'encryptedSecret' | 'previousEncryptedSecret' | 'previousSecretExpiresAt'>, now = new Date()): string[] {
  const key = masterKey(deps);
  const secrets = [unseal(key, endpoint.encryptedSecret, secretAad(endpoint.id))];
  if (endpoint.previousEncryptedSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > now) {
    secrets.push(unseal(key, endpoint.previousEncryptedSecret, secretAad(endpoint.id)));
  }
  return secrets;
}

// ---------------------------------------------------------------------------------------------
// Input rules.

const url = z.string().trim().min(1, 'must not be empty').max(2048, 'must be at most 2048 characters');
const description = z.string().trim().max(500, 'must be at most 500 characters');
const eventTypes = z
  .array(z.string().trim().max(100, 'must be at most 100 characters'))
  .max(MAX_EVENT_TYPES, `at most ${MAX_EVENT_TYPES} event types`)
  .superRefine((list, ctx) => {
    list.forEach((p, i) => {
      const problem = eventTypeProblem(p);
      if (problem) ctx.addIssue({ code: 'custom', path: [i], message: problem });
    });
  });

/** "*" anywhere means everything: stored as ["*"]; otherwise the distinct patterns, sorted. */
function normalizeTypes(list: string[] | null | undefined): string[] {
  if (!list?.length) return [];
  if (list.includes('*')) return ['*'];
  return [...new Set(list)].sort();
}

/**
 * Checks a target URL. Production: https only, and the host must resolve to public addresses only (the
 * dispatcher checks again when it connects). Elsewhere http and local addresses are allowed.
 */
async function checkUrl(deps: AppDeps, raw: string): Promise<string> {
  const bad = (message: string) => ValidationError.field('url', message);
  let target: URL;
  try {
    target = new URL(raw);
  } catch {
    throw bad('is not a URL');
  }
  const production = deps.config.production;
  if (target.protocol !== 'https:' && !(target.protocol === 'http:' && !production)) {
    throw bad(production ? 'must be an https:// URL' : 'must be an http:// or https:// URL');
  }
  if (target.username || target.password) throw bad('must not contain credentials');
  if (!target.hostname) throw bad('must name a host');
  target.hash = '';
  if (production) {
    const host = hostOf(target);
    let addresses: string[];
    try {
      addresses = await resolveHost(host);
    } catch {
      throw bad(`host ${host} does not resolve`);
    }
    if (!addresses.length || addresses.some(isPrivateAddress)) {
      throw bad('must point to a public address (not loopback, private or link-local)');
    }
  }
  return target.toString();
}

function requireTenant(ctx: ServiceContext): string {
  if (ctx.actor.kind === 'anonymous') throw new Error('unreachable: webhook operation without a tenant');
  return ctx.actor.tenantId;
}

async function lockTenantWebhooks(tx: Tx, tenantId: string) {
  await tx.$queryRaw`SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext(${`webhooks:${tenantId}`}))) AS l`;
}

async function findEndpoint(tx: Tx, tenantId: string, id: string): Promise<WebhookEndpoint> {
  const found = await tx.webhookEndpoint.findFirst({ where: { id, tenantId } });
  if (!found) throw new NotFoundError('Webhook endpoint');
  return found;
}

/** The tenant's chain head: an endpoint delivers the events sealed after it. */
async function headSeq(tx: Tx, tenantId: string): Promise<bigint> {
  const [head] = await tx.$queryRaw<{ seq: bigint | number | string }[]>`SELECT seq FROM "AuditChainHead" WHERE "tenantId" = ${tenantId}::uuid`;
  return BigInt(head?.seq ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Endpoint management.

export interface CreateEndpointInput {
  url: string;
  description?: string | null;
  eventTypes?: string[] | null;
  enabled?: boolean | null;
}

export async function createEndpoint(ctx: ServiceContext, input: CreateEndpointInput): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const tenantId = requireTenant(ctx);
  const data = parse(
    z.object({ url, description: description.nullish(), eventTypes: eventTypes.nullish(), enabled: z.boolean().nullish() }),
    input,
  );
  const target = await checkUrl(ctx.app, data.url);
  const id = randomUUID();
  const { secret, encrypted, prefix } = newSecret(ctx.app, id);
  const endpoint = await inTransaction(ctx, tenantId, async (tx, emit) => {
    // Serialises creations of one tenant, so the limit holds under concurrency on PostgreSQL too.
    await lockTenantWebhooks(tx, tenantId);
    const count = await tx.webhookEndpoint.count({ where: { tenantId } });
    if (count >= MAX_ENDPOINTS_PER_TENANT) {
      throw new ValidationError([{ path: '', message: `a tenant may have at most ${MAX_ENDPOINTS_PER_TENANT} webhook endpoints` }]);
    }
    const row = await tx.webhookEndpoint.create({
      data: {
        id,
        tenantId,
        url: target,
        description: data.description || null,
        eventTypes: normalizeTypes(data.eventTypes),
        enabled: data.enabled ?? true,
        ...(data.enabled === false ? { disabledReason: 'MANUAL' as const, disabledAt: new Date() } : {}),
        encryptedSecret: encrypted,
        secretPrefix: prefix,
        cursor: await headSeq(tx, tenantId),
      },
    });
    emit({
      type: 'webhook.created',
      subjectType: 'WebhookEndpoint',
      subjectId: row.id,
      payload: { url: row.url, eventTypes: row.eventTypes, enabled: row.enabled },
    });
    return row;
  });
  wakeDispatchers(ctx.app);
  return { endpoint, secret };
}

export interface UpdateEndpointInput {
  url?: string | null;
  description?: string | null;
  eventTypes?: string[] | null;
  enabled?: boolean | null;
  /** With `enabled: true` on a disabled endpoint: send the events of its types raised while it was disabled. */
  sendMissed?: boolean | null;
}

/** The most events raised while an endpoint was disabled that enabling it can still send (`sendMissed`). */
export const MAX_MISSED_EVENTS = 50_000;

/**
 * The events of a disabled endpoint's types that it has not been sent: those sealed after its cursor,
 * which the dispatcher stops moving while the endpoint is disabled. `count` is null when more than
 * MAX_MISSED_EVENTS were raised since (whatever their types): too many to send again.
 */
export async function missedEvents(
  db: Pick<Tx, 'auditEvent'>,
  endpoint: Pick<WebhookEndpoint, 'id' | 'tenantId' | 'cursor' | 'eventTypes'>,
): Promise<{ count: number | null }> {
  const raised = await db.auditEvent.findMany({
    where: { tenantId: endpoint.tenantId, seq: { gt: endpoint.cursor } },
    select: { type: true, subjectType: true, subjectId: true },
    orderBy: { seq: 'asc' },
    take: MAX_MISSED_EVENTS + 1,
  });
  if (raised.length > MAX_MISSED_EVENTS) return { count: null };
  return { count: raised.filter((e) => matchesEventType(endpoint.eventTypes, e.type) && !notifiesOwnDelivery(e, endpoint.id)).length };
}

/** Changes what is given (null or absent: unchanged; an empty description clears it). */
export async function updateEndpoint(ctx: ServiceContext, id: string, input: UpdateEndpointInput): Promise<WebhookEndpoint> {
  const tenantId = requireTenant(ctx);
  const data = parse(
    z.object({ url: url.nullish(), description: description.nullish(), eventTypes: eventTypes.nullish(), enabled: z.boolean().nullish(), sendMissed: z.boolean().nullish() }),
    input,
  );
  if (data.sendMissed && data.enabled !== true) throw ValidationError.field('sendMissed', 'only with enabled: true, when enabling a disabled endpoint');
  const target = data.url ? await checkUrl(ctx.app, data.url) : null;
  const endpoint = await inTransaction(ctx, tenantId, async (tx, emit) => {
    // Locked first: the dispatcher may disable it meanwhile (too many failures), and a manual change of
    // `enabled` must be decided on what is there now.
    await tx.$queryRaw`SELECT 1 AS locked FROM "WebhookEndpoint" WHERE id = ${id}::uuid AND "tenantId" = ${tenantId}::uuid FOR UPDATE`;
    const before = await findEndpoint(tx, tenantId, id);
    const change: { url?: string; description?: string | null; eventTypes?: string[]; enabled?: boolean } = {};
    if (target !== null) change.url = target;
    if (data.description !== undefined && data.description !== null) change.description = data.description || null;
    if (data.eventTypes) change.eventTypes = normalizeTypes(data.eventTypes);
    if (data.enabled !== undefined && data.enabled !== null) change.enabled = data.enabled;
    const enabling = change.enabled === true && !before.enabled;
    if (data.sendMissed && !enabling) throw ValidationError.field('sendMissed', 'the endpoint is already enabled: it has missed nothing');
    // Sent from where its cursor stopped, with the event types it has after this change.
    const missed = data.sendMissed ? (await missedEvents(tx, { ...before, eventTypes: change.eventTypes ?? before.eventTypes })).count : null;
    if (data.sendMissed && missed === null) {
      throw ValidationError.field(
        'sendMissed',
        `more than ${MAX_MISSED_EVENTS.toLocaleString('en-US')} events were raised while it was disabled, too many to send again; enable it without them (the audit log and its export keep them all)`,
      );
    }
    const changes = diff(before, change);
    if (!Object.keys(changes).length) return before;
    const now = new Date();
    const row = await tx.webhookEndpoint.update({
      where: { id },
      data: {
        ...change,
        updatedAt: now,
        // Re-enabled: with a clean run of failures (its pending deliveries go out as they were), from now
        // on, or, with sendMissed, from where its cursor stopped: the events raised while it was disabled.
        ...(enabling
          ? { ...(data.sendMissed ? {} : { cursor: await headSeq(tx, tenantId) }), disabledReason: null, disabledAt: null, consecutiveFailures: 0 }
          : {}),
        ...(change.enabled === false && before.enabled ? { disabledReason: 'MANUAL' as const, disabledAt: now } : {}),
        // A new address: the failures counted were the old one's, so the new one gets the full limit.
        ...('url' in changes ? { consecutiveFailures: 0 } : {}),
      },
    });
    emit({ type: 'webhook.updated', subjectType: 'WebhookEndpoint', subjectId: id, payload: { changes, ...(missed !== null ? { missedEventsSent: missed } : {}) } });
    return row;
  });
  wakeDispatchers(ctx.app);
  return endpoint;
}

/**
 * A new secret, shown once. With keepPreviousForHours the old secret keeps signing too (a second v1
 * in the header) for that long, so receivers can switch without dropping deliveries.
 */
export async function rotateSecret(ctx: ServiceContext, id: string, input: { keepPreviousForHours?: number | null }) {
  const tenantId = requireTenant(ctx);
  const { keepPreviousForHours } = parse(
    z.object({
      keepPreviousForHours: z
        .number()
        .int('must be an integer')
        .min(0, 'must not be negative')
        .max(MAX_KEEP_PREVIOUS_HOURS, `must be at most ${MAX_KEEP_PREVIOUS_HOURS} (7 days)`)
        .nullish(),
    }),
    input,
  );
  const keep = keepPreviousForHours ?? 0;
  const { secret, encrypted, prefix } = newSecret(ctx.app, id);
  const endpoint = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const before = await findEndpoint(tx, tenantId, id);
    const row = await tx.webhookEndpoint.update({
      where: { id },
      data: {
        encryptedSecret: encrypted,
        secretPrefix: prefix,
        previousEncryptedSecret: keep ? before.encryptedSecret : null,
        previousSecretExpiresAt: keep ? new Date(Date.now() + keep * 3_600_000) : null,
        updatedAt: new Date(),
      },
    });
    emit({ type: 'webhook.secret_rotated', subjectType: 'WebhookEndpoint', subjectId: id, payload: { keepPreviousForHours: keep } });
    return row;
  });
  return { endpoint, secret };
}

/** Deletes the endpoint and its delivery log; attempts in flight finish without being recorded. */
export async function deleteEndpoint(ctx: ServiceContext, id: string): Promise<WebhookEndpoint> {
  const tenantId = requireTenant(ctx);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const row = await findEndpoint(tx, tenantId, id);
    await tx.webhookEndpoint.delete({ where: { id } });
    emit({ type: 'webhook.deleted', subjectType: 'WebhookEndpoint', subjectId: id, payload: { url: row.url } });
    return row;
  });
}

// ---------------------------------------------------------------------------------------------
// Deliveries.

/** The JSON body a receiver gets; `id` is what receivers dedupe by (the same for retries and replays). */
export interface WebhookEventBody {
  id: string;
  seq: number | null;
  type: string;
  occurredAt: string;
  tenant: { id: string; slug: string };
  actor: { type: string; id: string | null };
  subject: { type: string; id: string };
  licenseId: string | null;
  customerId: string | null;
  requestId: string | null;
  payload: unknown;
}

export function eventBody(
  event: {
    id: bigint | string;
    seq: bigint | number | null;
    type: string;
    occurredAt: Date;
    actorType: string;
    actorId: string | null;
    subjectType: string;
    subjectId: string;
    licenseId: string | null;
    customerId: string | null;
    requestId: string | null;
    payload: unknown;
  },
  tenant: { id: string; slug: string },
): string {
  const body: WebhookEventBody = {
    id: event.id.toString(),
    seq: event.seq === null ? null : Number(event.seq),
    type: event.type,
    occurredAt: event.occurredAt.toISOString(),
    tenant: { id: tenant.id, slug: tenant.slug },
    actor: { type: event.actorType, id: event.actorId },
    subject: { type: event.subjectType, id: event.subjectId },
    licenseId: event.licenseId,
    customerId: event.customerId,
    requestId: event.requestId,
    payload: event.payload ?? {},
  };
  return JSON.stringify(body);
}

/**
 * Queues a `webhook.test` event for the endpoint (sent now, whatever event types it subscribes to): its
 * one request; the webhook.test_sent audit row is not sent to it (notifiesOwnDelivery).
 */
export async function sendTest(ctx: ServiceContext, id: string): Promise<WebhookDelivery> {
  const tenantId = requireTenant(ctx);
  const delivery = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const endpoint = await findEndpoint(tx, tenantId, id);
    if (!endpoint.enabled) throw new ConflictError('the endpoint is disabled; enable it to send a test');
    const tenant = await tx.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { id: true, slug: true } });
    const actor = actorOf(ctx.actor);
    const now = new Date();
    const eventId = `test_${randomUUID()}`;
    const row = await tx.webhookDelivery.create({
      data: {
        tenantId,
        endpointId: id,
        eventId,
        eventSeq: null,
        eventType: 'webhook.test',
        body: eventBody(
          {
            id: eventId,
            seq: null,
            type: 'webhook.test',
            occurredAt: now,
            actorType: actor.type,
            actorId: actor.id,
            subjectType: 'WebhookEndpoint',
            subjectId: id,
            licenseId: null,
            customerId: null,
            requestId: ctx.requestId,
            payload: { message: 'A test event sent from the Tessera console or API.' },
          },
          tenant,
        ),
        nextAttemptAt: now,
        createdAt: now,
      },
    });
    emit({ type: 'webhook.test_sent', subjectType: 'WebhookEndpoint', subjectId: id, payload: { deliveryId: row.id } });
    return row;
  });
  wakeDispatchers(ctx.app);
  return delivery;
}

/** Sends a delivery's event again, now, as a new delivery (same event id and body, fresh signature and attempts). */
export async function replayDelivery(ctx: ServiceContext, deliveryId: string): Promise<WebhookDelivery> {
  const tenantId = requireTenant(ctx);
  const delivery = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const original = await tx.webhookDelivery.findFirst({ where: { id: deliveryId, tenantId }, include: { endpoint: { select: { enabled: true } } } });
    if (!original) throw new NotFoundError('Webhook delivery');
    if (!original.endpoint.enabled) throw new ConflictError('the endpoint is disabled; enable it to replay');
    const now = new Date();
    const row = await tx.webhookDelivery.create({
      data: {
        tenantId,
        endpointId: original.endpointId,
        eventId: original.eventId,
        eventSeq: original.eventSeq,
        eventType: original.eventType,
        body: original.body,
        replayOfId: original.id,
        nextAttemptAt: now,
        createdAt: now,
      },
    });
    emit({
      type: 'webhook.replayed',
      subjectType: 'WebhookEndpoint',
      subjectId: original.endpointId,
      payload: { deliveryId: row.id, replayOf: original.id, eventId: original.eventId },
    });
    return row;
  });
  wakeDispatchers(ctx.app);
  return delivery;
}
