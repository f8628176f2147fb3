import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../builder.ts';
import type { WebhookDeliveryStatus } from '@tessera/db/client';
import { HISTORY_READER } from '../audit/types.ts';
import { NIL_UUID } from '../common/db.ts';
import { parseId } from '../common/ids.ts';
import { keysetPage, type SortKey } from '../common/pages.ts';
import { nodeWhere, tenantWhere } from '../common/tenancy.ts';
import { ADMIN_ERRORS } from '../common/types.ts';
import { EVENT_TYPES } from '../audit/event-types.ts';
import { createEndpoint, deleteEndpoint, MAX_MISSED_EVENTS, missedEvents, replayDelivery, rotateSecret, sendTest, updateEndpoint } from './service.ts';

export const WebhookDeliveryStatusEnum = builder.enumType('WebhookDeliveryStatus', {
  values: {
    PENDING: { description: 'Not delivered yet: waiting for its first attempt or a retry.' },
    SUCCEEDED: { description: 'The endpoint answered 2xx.' },
    FAILED: { description: 'Every attempt failed; replay it to try again.' },
  } as const,
});

export const WebhookDisabledReasonEnum = builder.enumType('WebhookDisabledReason', {
  values: {
    MANUAL: { description: 'Disabled by a member or an API token.' },
    DELIVERY_FAILURES: {
      description: 'Disabled automatically: consecutiveFailures deliveries in a row failed after their last attempt (TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES).',
    },
  } as const,
});

builder.prismaNode('WebhookEndpoint', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  nullable: true,
  authScopes: { role: 'READ_ONLY' },
  fields: (t) => ({
    url: t.exposeString('url'),
    description: t.exposeString('description', { nullable: true }),
    eventTypes: t.exposeStringList('eventTypes', { description: 'Event types or "<resource>.*" patterns; empty or ["*"]: every event.' }),
    enabled: t.exposeBoolean('enabled'),
    disabledReason: t.expose('disabledReason', { type: WebhookDisabledReasonEnum, nullable: true, description: 'Why it is disabled; null while enabled.' }),
    disabledAt: t.expose('disabledAt', { type: 'DateTime', nullable: true, description: 'When it was disabled; null while enabled (and for one disabled before this was recorded).' }),
    consecutiveFailures: t.exposeInt('consecutiveFailures', {
      description:
        'Deliveries that failed after their last attempt in a row, with no success between, while enabled. At the server\'s limit (TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES) the endpoint is disabled; re-enabling it or changing its url resets this to 0 (changing its description or event types does not).',
    }),
    missedEvents: t.int({
      nullable: true,
      select: { id: true, tenantId: true, cursor: true, eventTypes: true, enabled: true },
      description: `While disabled: the events of its types raised since it stopped receiving, which enabling it with sendMissed sends; null while enabled, and when more than ${MAX_MISSED_EVENTS.toLocaleString('en-US')} events were raised since (too many to send again).`,
      resolve: async (e, _a, ctx) => (e.enabled ? null : (await missedEvents(ctx.prisma, e)).count),
    }),
    secretPrefix: t.exposeString('secretPrefix', { description: 'The first characters of the signing secret; the secret itself is shown once.' }),
    previousSecretExpiresAt: t.expose('previousSecretExpiresAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Until then deliveries are signed with the previous secret too (after a rotation that kept it).',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    // Paged by keyset (not a relatedConnection, which pages with Prisma's cursor): a delivery leaves a
    // status filter when it is retried or completes, and the retention sweep deletes old ones.
    deliveries: t.prismaConnection({
      type: 'WebhookDelivery',
      cursor: 'endpointId_createdAt_id',
      description: 'Newest first.',
      args: { status: t.arg({ type: WebhookDeliveryStatusEnum }) },
      totalCount: (endpoint, args, ctx) => ctx.prisma.webhookDelivery.count({ where: deliveriesOf(endpoint, args.status) }),
      resolve: (query, endpoint, args, ctx) => {
        const page = keysetPage(query, DELIVERY_ORDER);
        return ctx.prisma.webhookDelivery.findMany({ ...page.query, where: { ...deliveriesOf(endpoint, args.status), ...page.where }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
      },
    }),
  }),
});

builder.prismaNode('WebhookDelivery', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  nullable: true,
  authScopes: { role: 'READ_ONLY' },
  fields: (t) => ({
    endpoint: t.relation('endpoint'),
    eventId: t.exposeString('eventId', { description: 'Sent as Tessera-Event-Id; the same for retries and replays of one event.' }),
    eventSeq: t.int({ nullable: true, description: "The event's position in the tenant audit chain; null for tests.", resolve: (d) => (d.eventSeq === null ? null : Number(d.eventSeq)) }),
    eventType: t.exposeString('eventType'),
    // The body is the event as the audit log holds it (payload included: a new member's email, say), and a
    // response may echo it: reading them needs what reading the audit log needs (auditEvents).
    body: t.exposeString('body', { nullable: true, authScopes: { role: HISTORY_READER }, description: 'The JSON body sent. Needs SUPPORT (it carries the event, as the audit log does).' }),
    status: t.expose('status', { type: WebhookDeliveryStatusEnum }),
    attempts: t.exposeInt('attempts', { description: 'Attempts made so far.' }),
    nextAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      select: { status: true, nextAttemptAt: true },
      resolve: (d) => (d.status === 'PENDING' ? d.nextAttemptAt : null),
    }),
    lastAttemptAt: t.expose('lastAttemptAt', { type: 'DateTime', nullable: true }),
    lastResponseStatus: t.exposeInt('lastResponseStatus', { nullable: true }),
    lastResponseBody: t.exposeString('lastResponseBody', { nullable: true, authScopes: { role: HISTORY_READER }, description: 'The start of the last response body (2 KB at most). Needs SUPPORT.' }),
    lastError: t.exposeString('lastError', { nullable: true }),
    lastDurationMs: t.exposeInt('lastDurationMs', { nullable: true }),
    replayOfId: t.id({
      nullable: true,
      select: { replayOfId: true },
      resolve: (d) => (d.replayOfId ? encodeGlobalID('WebhookDelivery', d.replayOfId) : null),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    attemptLog: t.relation('log', { query: { orderBy: { number: 'asc' } } }),
  }),
});

builder.prismaObject('WebhookAttempt', {
  fields: (t) => ({
    number: t.exposeInt('number'),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    durationMs: t.exposeInt('durationMs'),
    succeeded: t.exposeBoolean('succeeded'),
    responseStatus: t.exposeInt('responseStatus', { nullable: true }),
    responseBody: t.exposeString('responseBody', { nullable: true, authScopes: { role: HISTORY_READER }, description: 'The start of the response body (2 KB at most). Needs SUPPORT.' }),
    error: t.exposeString('error', { nullable: true }),
  }),
});

/** An endpoint's deliveries, of one status or all. */
const deliveriesOf = (endpoint: { id: string; tenantId: string }, status?: WebhookDeliveryStatus | null) => ({
  tenantId: endpoint.tenantId,
  endpointId: endpoint.id,
  ...(status ? { status } : {}),
});

/** The order of an endpoint's deliveries, newest first; their cursor holds these values. */
const DELIVERY_ORDER: SortKey[] = [
  { field: 'createdAt', kind: 'date', direction: 'desc' },
  { field: 'id', kind: 'uuid', direction: 'desc' },
];

/** The endpoint list's order, newest first; its cursor holds these values. */
const ENDPOINT_ORDER: SortKey[] = [
  { field: 'createdAt', kind: 'date', direction: 'desc' },
  { field: 'id', kind: 'uuid', direction: 'desc' },
];

builder.queryFields((t) => ({
  webhookEndpoints: t.prismaConnection({
    type: 'WebhookEndpoint',
    cursor: 'tenantId_createdAt_id',
    description: "The tenant's webhook endpoints, newest first.",
    authScopes: { role: 'READ_ONLY' },
    totalCount: (_p, _a, ctx) => ctx.prisma.webhookEndpoint.count({ where: tenantWhere(ctx.actor) }),
    resolve: (query, _r, _a, ctx) => {
      const page = keysetPage(query, ENDPOINT_ORDER);
      return ctx.prisma.webhookEndpoint.findMany({ ...page.query, where: { ...tenantWhere(ctx.actor), ...page.where }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    },
  }),
  webhookEndpoint: t.prismaField({
    type: 'WebhookEndpoint',
    nullable: true,
    authScopes: { role: 'READ_ONLY' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _r, { id }, ctx) => {
      // An id that does not parse (a link cut short) names no endpoint: the lookup of the nil id finds none, and
      // uses the selection as every prismaField must (a bare `return null` fails outside production when the
      // selection reads relations, as the console's deliveries do).
      let endpointId = NIL_UUID;
      try {
        endpointId = parseId(String(id), 'WebhookEndpoint', 'id');
      } catch {
        // Not an endpoint's id: the nil id stands for it.
      }
      return ctx.prisma.webhookEndpoint.findFirst({ ...query, where: { id: endpointId, ...tenantWhere(ctx.actor) } });
    },
  }),
  webhookEventTypes: t.stringList({
    description: 'The event types an endpoint can subscribe to (also "<resource>.*" and "*").',
    authScopes: { role: 'READ_ONLY' },
    resolve: () => [...EVENT_TYPES],
  }),
}));

const CreateWebhookEndpointInput = builder.inputType('CreateWebhookEndpointInput', {
  fields: (t) => ({
    url: t.string({ required: true, description: 'https:// in production, to a public address.' }),
    description: t.string(),
    eventTypes: t.stringList({ description: 'Event types or "<resource>.*" patterns; empty, absent or ["*"]: every event.' }),
    enabled: t.boolean({ description: 'Default true.' }),
  }),
});

const UpdateWebhookEndpointInput = builder.inputType('UpdateWebhookEndpointInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    url: t.string({ description: 'A new URL starts consecutiveFailures again from 0 (the failures counted were against the old one).' }),
    description: t.string({ description: 'An empty string clears it.' }),
    eventTypes: t.stringList({ description: 'Replaces the list; [] or ["*"]: every event.' }),
    enabled: t.boolean({
      description:
        'A disabled endpoint receives nothing; re-enabled, it receives the events raised from then on (and its pending deliveries), and its consecutiveFailures starts again from 0.',
    }),
    sendMissed: t.boolean({
      description:
        `With enabled: true on a disabled endpoint: also send the events of its types raised while it was disabled (missedEvents), oldest first. Refused when more than ${MAX_MISSED_EVENTS.toLocaleString('en-US')} events were raised since.`,
    }),
  }),
});

const RotateWebhookSecretInput = builder.inputType('RotateWebhookSecretInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    keepPreviousForHours: t.int({ description: 'Also sign with the old secret for this long (0 to 168; default 0: retire it now).' }),
  }),
});

const IdInput = (name: string) => builder.inputType(name, { fields: (t) => ({ id: t.id({ required: true }) }) });
const DeleteWebhookEndpointInput = IdInput('DeleteWebhookEndpointInput');
const SendTestWebhookInput = IdInput('SendTestWebhookInput');
const ReplayWebhookDeliveryInput = IdInput('ReplayWebhookDeliveryInput');

const WebhookSecretPayload = (name: string) =>
  builder.objectRef<{ id: string; secret: string }>(name).implement({
    fields: (t) => ({
      secret: t.exposeString('secret', { description: 'The signing secret (whsec_...). It cannot be shown again.' }),
      endpoint: t.prismaField({
        type: 'WebhookEndpoint',
        resolve: (query, p, _a, ctx) => ctx.prisma.webhookEndpoint.findUniqueOrThrow({ ...query, where: { id: p.id } }),
      }),
    }),
  });
const CreateWebhookEndpointPayload = WebhookSecretPayload('CreateWebhookEndpointPayload');
const RotateWebhookSecretPayload = WebhookSecretPayload('RotateWebhookSecretPayload');

const DeleteWebhookEndpointPayload = builder.objectRef<{ id: string }>('DeleteWebhookEndpointPayload').implement({
  fields: (t) => ({ deletedId: t.id({ resolve: (p) => encodeGlobalID('WebhookEndpoint', p.id) }) }),
});

const endpointId = (id: string | number) => parseId(String(id), 'WebhookEndpoint', 'id');

builder.mutationFields((t) => ({
  createWebhookEndpoint: t.field({
    type: CreateWebhookEndpointPayload,
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateWebhookEndpointInput, required: true }) },
    resolve: async (_r, { input }, ctx) => {
      const { endpoint, secret } = await createEndpoint(ctx, input);
      return { id: endpoint.id, secret };
    },
  }),
  updateWebhookEndpoint: t.prismaField({
    type: 'WebhookEndpoint',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: UpdateWebhookEndpointInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { id, ...changes } = input;
      const row = await updateEndpoint(ctx, endpointId(id), changes);
      return ctx.prisma.webhookEndpoint.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  rotateWebhookSecret: t.field({
    type: RotateWebhookSecretPayload,
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: RotateWebhookSecretInput, required: true }) },
    resolve: async (_r, { input }, ctx) => {
      const { endpoint, secret } = await rotateSecret(ctx, endpointId(input.id), { keepPreviousForHours: input.keepPreviousForHours });
      return { id: endpoint.id, secret };
    },
  }),
  deleteWebhookEndpoint: t.field({
    type: DeleteWebhookEndpointPayload,
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: DeleteWebhookEndpointInput, required: true }) },
    resolve: async (_r, { input }, ctx) => {
      const row = await deleteEndpoint(ctx, endpointId(input.id));
      return { id: row.id };
    },
  }),
  sendTestWebhook: t.prismaField({
    type: 'WebhookDelivery',
    description: 'Queues a "webhook.test" event for the endpoint, sent at once; the delivery shows in its log.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: SendTestWebhookInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const row = await sendTest(ctx, endpointId(input.id));
      return ctx.prisma.webhookDelivery.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  replayWebhookDelivery: t.prismaField({
    type: 'WebhookDelivery',
    description: "Sends a delivery's event again now, as a new delivery with the same event id.",
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: ReplayWebhookDeliveryInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const row = await replayDelivery(ctx, parseId(String(input.id), 'WebhookDelivery', 'id'));
      return ctx.prisma.webhookDelivery.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
}));
