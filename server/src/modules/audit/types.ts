import { encodeGlobalID } from '@pothos/plugin-relay';
import type { Role } from '@tessera/db/client';
import { GraphQLError } from 'graphql';
import { builder } from '../../builder.ts';
import type { Context } from '../../context.ts';
import { ValidationError } from '../../errors.ts';
import { parseId } from '../common/ids.ts';
import { keysetPage, type SortKey } from '../common/pages.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { hasRole } from '../tenants/roles.ts';
import type { DomainEvent } from './bus.ts';
import { type ChainVerification, verifyChain } from './chain.ts';
import { auditFilterArgs, exactEventTypes, MAX_EVENT_TYPE_LENGTH, MAX_EVENT_TYPES, pageOfTypes } from './history.ts';
import { feedAccessSince, feedHead, type LicenseLiveState, licenseLiveStream, type LiveDevice, tenantEventStream } from './stream.ts';

builder.prismaObject('AuditEvent', {
  fields: (t) => ({
    id: t.id({ resolve: (e) => e.id.toString() }),
    seq: t.int({ nullable: true, description: 'Position in the tenant audit chain; null for a moment after commit.', resolve: (e) => (e.seq === null ? null : Number(e.seq)) }),
    type: t.exposeString('type'),
    actorType: t.exposeString('actorType'),
    actorId: t.exposeString('actorId', { nullable: true }),
    subjectType: t.exposeString('subjectType'),
    subjectId: t.exposeString('subjectId'),
    licenseId: t.exposeString('licenseId', { nullable: true }),
    customerId: t.exposeString('customerId', { nullable: true }),
    payload: t.expose('payload', { type: 'JSON' }),
    requestId: t.exposeString('requestId', { nullable: true }),
    occurredAt: t.expose('occurredAt', { type: 'DateTime' }),
    prevHash: t.exposeString('prevHash', { nullable: true }),
    hash: t.exposeString('hash', { nullable: true }),
  }),
});

/**
 * Reading the tenant's event history needs SUPPORT: the audit log, and the payloads it holds. The live
 * feeds need only READ_ONLY, and so does resuming them with `after` (the console does after a lost
 * socket): below SUPPORT a resume gives the events that the caller could have received live, from the
 * moment its member or API token was created on, each withheld as it would be live (payloadVisible).
 */
export const HISTORY_READER = 'SUPPORT' as const;

/** Events from before the caller's access began are history: only a history reader resumes past it. */
async function resumeSince(ctx: Context, after: string | number | null | undefined): Promise<Date | null> {
  if (after == null || hasRole(ctx.actor, HISTORY_READER)) return null;
  return feedAccessSince(ctx.app, ctx.actor);
}

/** The audit log's order, newest first by id; the cursor is the id. */
const EVENT_ORDER: SortKey[] = [{ field: 'id', kind: 'bigint', direction: 'desc' }];

builder.queryFields((t) => ({
  auditEvents: t.prismaConnection({
    type: 'AuditEvent',
    cursor: 'id',
    authScopes: { role: HISTORY_READER },
    description:
      "The caller's tenant's audit log, newest first. Bad arguments (both `type` and `types`, an empty or over-long `types`, a malformed pattern, a bad `licenseId`) are a BAD_USER_INPUT error, its extensions' `fields` saying which, before anything is read. The audit export (`/audit/export`) takes the same filters.",
    args: {
      type: t.arg.string({ description: 'An event type, e.g. "license.created", or a whole domain, "<domain>.*", e.g. "license.*". Not together with `types`.' }),
      types: t.arg.stringList({
        description: `Event types or "<domain>.*" patterns, any of which, e.g. ["compliance.threshold_crossed", "license.*"]: 1 to ${MAX_EVENT_TYPES}, each at most ${MAX_EVENT_TYPE_LENGTH} characters. Not together with \`type\`.`,
      }),
      licenseId: t.arg.id({ description: 'The License global id or raw uuid.' }),
    },
    resolve: async (query, _r, args, ctx) => {
      const filter = searchArg(() => auditFilterArgs(args));
      const { licenseId } = filter;
      const { tenantId } = tenantWhere(ctx.actor);
      const types = filter.types ? await exactEventTypes(ctx.app, tenantId, filter.types) : null;
      const page = keysetPage(query, EVENT_ORDER);
      if (types && types.length > 1 && !licenseId) {
        // Several types of the whole log: merged from one index walk per type (history.ts), then read.
        const { take, ...select } = page.query;
        const ids = await pageOfTypes(ctx.app, tenantId, types, take, query.cursor?.id ?? null);
        return ctx.prisma.auditEvent.findMany({ ...select, where: { tenantId, id: { in: ids } }, orderBy: { id: 'desc' } });
      }
      return ctx.prisma.auditEvent.findMany({
        ...page.query,
        where: {
          tenantId,
          ...page.where,
          // No type at all (a domain the log does not hold): `in: []`, which matches nothing.
          ...(types ? { type: types.length === 1 ? types[0] : { in: types } } : {}),
          ...(licenseId ? { licenseId } : {}),
        },
        orderBy: { id: 'desc' },
      });
    },
  }),
}));

/** A search argument's ValidationError, as the BAD_USER_INPUT error a list's bad argument is (README), with its fields. */
function searchArg<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ValidationError) throw new GraphQLError(err.message, { extensions: { code: 'BAD_USER_INPUT', fields: err.fields } });
    throw err;
  }
}

const ChainBreakReason = builder.enumType('AuditChainBreakReason', {
  values: {
    MISSING_ENTRY: { description: 'An entry was deleted: the sequence has a hole.' },
    HASH_MISMATCH: { description: 'An entry was altered after it was sealed.' },
    PREV_HASH_MISMATCH: { description: 'An entry does not commit to the one before it.' },
    TRUNCATED: { description: 'The newest entries were deleted: the chain head points past the log.' },
  } as const,
});

const ChainBreak = builder.objectRef<NonNullable<ChainVerification['firstBroken']>>('AuditChainBreak').implement({
  fields: (t) => ({
    seq: t.exposeInt('seq'),
    eventId: t.exposeID('eventId', { nullable: true }),
    reason: t.expose('reason', { type: ChainBreakReason }),
    message: t.exposeString('message'),
  }),
});

const ChainVerificationRef = builder.objectRef<ChainVerification>('AuditChainVerification').implement({
  fields: (t) => ({
    ok: t.exposeBoolean('ok'),
    checked: t.exposeInt('checked', { description: 'Entries whose hash was recomputed.' }),
    headSeq: t.exposeInt('headSeq'),
    unsealed: t.exposeInt('unsealed', { description: 'Committed entries not chained yet.' }),
    firstBroken: t.field({ type: ChainBreak, nullable: true, resolve: (v) => v.firstBroken }),
  }),
});

builder.queryFields((t) => ({
  activityCursor: t.id({
    nullable: true,
    description:
      "The id of the caller's tenant's newest event: where `activity` and `complianceAlerts` start without `after`. A client that passes it as `after` misses nothing, also when no event has reached it before its socket was lost. Null while the tenant has no events.",
    authScopes: { role: 'READ_ONLY' },
    resolve: (_r, _a, ctx) => feedHead(ctx.app, tenantWhere(ctx.actor).tenantId),
  }),
  verifyAuditChain: t.field({
    type: ChainVerificationRef,
    description: "Recomputes the caller's tenant audit hash chain; reports the first broken entry.",
    authScopes: { role: 'ADMIN' },
    resolve: (_r, _a, ctx) => verifyChain(ctx.app, tenantWhere(ctx.actor).tenantId),
  }),
}));

/**
 * The live feeds need only READ_ONLY, but some events are about objects READ_ONLY cannot read: members
 * (their email) and API tokens (their name), which need ADMIN. Such an event's payload goes to a caller
 * who may read its subject, or the audit log that holds the same payload (SUPPORT); to anyone else the
 * event comes without it.
 */
const SUBJECT_READER: Record<string, Role> = { User: 'ADMIN', ApiToken: 'ADMIN' };
function payloadVisible(e: DomainEvent, ctx: Context): boolean {
  const reader = SUBJECT_READER[e.subjectType];
  return !reader || hasRole(ctx.actor, reader) || hasRole(ctx.actor, HISTORY_READER);
}

const Actor = builder.objectRef<{ type: string; id: string | null }>('EventActor').implement({
  fields: (t) => ({
    type: t.exposeString('type', { description: 'user, api_token, operator, client_key, system...' }),
    id: t.exposeString('id', { nullable: true }),
  }),
});

const ActivityEvent = builder.objectRef<DomainEvent>('ActivityEvent').implement({
  description: 'A domain event of the tenant, as the activity feed delivers it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The audit event id; pass the last one seen as `after` to resume.' }),
    seq: t.exposeInt('seq'),
    type: t.exposeString('type'),
    occurredAt: t.field({ type: 'DateTime', resolve: (e) => e.occurredAt }),
    actor: t.field({ type: Actor, resolve: (e) => ({ type: e.actorType, id: e.actorId }) }),
    subjectType: t.exposeString('subjectType'),
    subjectId: t.exposeString('subjectId'),
    licenseId: t.id({ nullable: true, resolve: (e) => (e.licenseId ? encodeGlobalID('License', e.licenseId) : null) }),
    customerId: t.id({ nullable: true, resolve: (e) => (e.customerId ? encodeGlobalID('Customer', e.customerId) : null) }),
    payload: t.field({
      type: 'JSON',
      nullable: true,
      description: "null when withheld: an event about a member or an API token, for a role that can read neither them (ADMIN) nor the audit log (SUPPORT).",
      resolve: (e, _a, ctx) => (payloadVisible(e, ctx) ? e.payload : null),
    }),
    requestId: t.exposeString('requestId', { nullable: true }),
    // Events carry ids only; the current state is read when a subscriber asks for it.
    license: t.prismaField({
      type: 'License',
      nullable: true,
      resolve: (query, e, _a, ctx) =>
        e.licenseId ? ctx.prisma.license.findFirst({ ...query, where: { id: e.licenseId, tenantId: e.tenantId } }) : null,
    }),
    customer: t.prismaField({
      type: 'Customer',
      nullable: true,
      resolve: (query, e, _a, ctx) =>
        e.customerId ? ctx.prisma.customer.findFirst({ ...query, where: { id: e.customerId, tenantId: e.tenantId } }) : null,
    }),
  }),
});

const ActivityFilterInput = builder.inputType('ActivityFilter', {
  fields: (t) => ({
    types: t.stringList({ required: false, description: 'Event types, e.g. ["activation.created"].' }),
    licenseId: t.id({ required: false }),
    customerId: t.id({ required: false }),
  }),
});

const LiveDeviceRef = builder.objectRef<LiveDevice>('LiveDevice').implement({
  fields: (t) => ({
    id: t.id({ description: 'The Activation global id.', resolve: (d) => encodeGlobalID('Activation', d.id) }),
    hostname: t.exposeString('hostname', { nullable: true }),
    platform: t.exposeString('platform', { nullable: true }),
    osVersion: t.exposeString('osVersion', { nullable: true }),
    appVersion: t.exposeString('appVersion', { nullable: true }),
    lastHeartbeatAt: t.expose('lastHeartbeatAt', { type: 'DateTime', nullable: true }),
  }),
});

const LicenseLive = builder.objectRef<LicenseLiveState>('LicenseLiveState').implement({
  fields: (t) => ({
    licenseId: t.id({ resolve: (l) => encodeGlobalID('License', l.licenseId) }),
    activationsUsed: t.exposeInt('activationsUsed'),
    maxActivations: t.exposeInt('maxActivations', { nullable: true }),
    seats: t.exposeInt('seats', { nullable: true }),
    seatsInUse: t.exposeInt('seatsInUse'),
    state: t.exposeString('state'),
    revision: t.exposeInt('revision'),
    eventId: t.exposeID('eventId', { nullable: true, description: 'The event that changed it; null for the state sent on subscribe.' }),
    eventType: t.exposeString('eventType', { nullable: true }),
    eventOccurredAt: t.field({ type: 'DateTime', nullable: true, resolve: (l) => (l.eventOccurredAt ? new Date(l.eventOccurredAt) : null) }),
    device: t.field({
      type: LiveDeviceRef,
      nullable: true,
      description: 'For a `device.heartbeat`: the device as it is after it (its last-seen, versions, host), to show it without reading the license again.',
      resolve: (l) => l.device,
    }),
  }),
});

/** A License/Customer global id or raw uuid; anything else is a user error, before any database access. */
function idArg(value: string | number, typename: string, path: string): string {
  try {
    return parseId(String(value), typename, path);
  } catch {
    throw new GraphQLError(`${path}: not a ${typename} id`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
}

/** Checked when the subscription starts (the socket was authenticated on connect, roles can change). */
function subscriberTenant(ctx: Context): string {
  if (ctx.actor.kind === 'anonymous') throw new GraphQLError('Authentication required', { extensions: { code: 'UNAUTHENTICATED' } });
  if (!hasRole(ctx.actor, 'READ_ONLY')) throw new GraphQLError('Your role does not allow this operation', { extensions: { code: 'FORBIDDEN' } });
  return ctx.actor.tenantId;
}

builder.subscriptionFields((t) => ({
  activity: t.field({
    type: ActivityEvent,
    description: 'Every domain event of the caller\'s tenant, in order. With `after`, the events after that one first (from the audit log), then live ones.',
    authScopes: { role: 'READ_ONLY' },
    args: {
      filter: t.arg({ type: ActivityFilterInput }),
      after: t.arg.id({ description: 'The id of the last event the client saw (or `activityCursor`).' }),
    },
    subscribe: async (_r, args, ctx) => {
      const tenantId = subscriberTenant(ctx);
      const filter = {
        types: args.filter?.types ?? null,
        licenseId: args.filter?.licenseId == null ? null : idArg(args.filter.licenseId, 'License', 'filter.licenseId'),
        customerId: args.filter?.customerId == null ? null : idArg(args.filter.customerId, 'Customer', 'filter.customerId'),
      };
      return tenantEventStream(ctx.app, tenantId, {
        afterId: args.after == null ? null : String(args.after),
        filter: { ...filter, since: await resumeSince(ctx, args.after) },
      });
    },
    resolve: (e) => e,
  }),
  complianceAlerts: t.field({
    type: ActivityEvent,
    description: 'The compliance.* events of the tenant (thresholds crossed, goodwill use, ...); resumable like activity.',
    authScopes: { role: 'READ_ONLY' },
    args: {
      licenseId: t.arg.id(),
      after: t.arg.id({ description: 'The id of the last event the client saw (or `activityCursor`).' }),
    },
    subscribe: async (_r, args, ctx) => {
      const tenantId = subscriberTenant(ctx);
      const licenseId = args.licenseId == null ? null : idArg(args.licenseId, 'License', 'licenseId');
      return tenantEventStream(ctx.app, tenantId, {
        afterId: args.after == null ? null : String(args.after),
        filter: { typePrefixes: ['compliance.'], licenseId, since: await resumeSince(ctx, args.after) },
      });
    },
    resolve: (e) => e,
  }),
  licenseLive: t.field({
    type: LicenseLive,
    description: "The license's activation and seat counters: now, then after every event about the license.",
    authScopes: { role: 'READ_ONLY' },
    args: { licenseId: t.arg.id({ required: true }) },
    subscribe: (_r, args, ctx) => licenseLiveStream(ctx.app, subscriberTenant(ctx), idArg(args.licenseId, 'License', 'licenseId')),
    resolve: (s) => s,
  }),
}));
