import { GraphQLError } from 'graphql';
import { errorTypeMap, wrapErrorIfMatches } from '@pothos/plugin-errors';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../builder.ts';
import { LicensingError, NotFoundError, ValidationError } from '../../errors.ts';
import { parseId } from '../common/ids.ts';
import { nodeWhere, tenantWhere } from '../common/tenancy.ts';
import { ADMIN_ERRORS, CLIENT_ERRORS } from '../common/types.ts';
import { type SeatUsageBucket, seatUsageBreakdown } from './analytics.ts';
import { DEFAULT_LEASE_SECONDS } from './batched.ts';
import {
  borrowSeat,
  checkoutSeat,
  type GrantedLease,
  heartbeatSeat,
  type QueuedSeat,
  releaseLeaseByOperator,
  releaseSeat,
  seatQueuePosition,
} from './service.ts';

export const LeaseStatusEnum = builder.enumType('LeaseStatus', { values: ['ACTIVE', 'RELEASED', 'EXPIRED'] as const });

/** A lease as operators see it (seat map). */
builder.prismaNode('Lease', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  // Another tenant's id, or an unknown one, resolves to null rather than an internal error.
  nullable: true,
  authScopes: { member: true },
  fields: (t) => ({
    holder: t.exposeString('holder', { description: 'The fingerprint or user the seat is counted by.' }),
    fingerprint: t.exposeString('fingerprint'),
    user: t.exposeString('user', { nullable: true }),
    department: t.exposeString('department', { nullable: true }),
    status: t.expose('status', { type: LeaseStatusEnum }),
    borrowed: t.exposeBoolean('borrowed'),
    grantedAt: t.expose('grantedAt', { type: 'DateTime' }),
    renewedAt: t.expose('renewedAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    endedAt: t.expose('endedAt', { type: 'DateTime', nullable: true }),
  }),
});

const SeatQueueEntryType = builder.prismaObject('SeatQueueEntry', {
  fields: (t) => ({
    holder: t.exposeString('holder'),
    fingerprint: t.exposeString('fingerprint'),
    user: t.exposeString('user', { nullable: true }),
    enqueuedAt: t.expose('enqueuedAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
  }),
});

const SeatUsageDayType = builder.prismaObject('SeatUsageDay', {
  fields: (t) => ({
    day: t.exposeString('day', { description: 'UTC day, YYYY-MM-DD.' }),
    peak: t.exposeInt('peak', { description: 'Most leases held at once that day.' }),
    granted: t.exposeInt('granted'),
    denials: t.exposeInt('denials', { description: 'Checkouts refused with NO_SEATS_AVAILABLE.' }),
  }),
});

export const SeatLease = builder.objectRef<GrantedLease>('SeatLease').implement({
  fields: (t) => ({
    id: t.id({ resolve: (g) => encodeGlobalID('Lease', g.lease.id) }),
    expiresAt: t.field({ type: 'DateTime', resolve: (g) => g.lease.expiresAt }),
    token: t.exposeString('token', { description: 'Compact JWS, typ "tessera-lease+jwt".' }),
    status: t.field({ type: LeaseStatusEnum, resolve: (g) => g.lease.status }),
    borrowed: t.boolean({ resolve: (g) => g.lease.borrowed }),
  }),
});

const SeatQueued = builder.objectRef<QueuedSeat>('SeatQueued').implement({
  fields: (t) => ({
    position: t.exposeInt('position', { description: '1 is the head of the queue: it gets the next free seat.' }),
    expiresAt: t.field({ type: 'DateTime', description: 'The place is dropped unless the client checks out again (or polls) before this.', resolve: (q) => q.expiresAt }),
  }),
});

const SeatQueuePosition = builder.objectRef<{ entry: QueuedSeat | null }>('SeatQueuePosition').implement({
  fields: (t) => ({
    queued: t.boolean({ resolve: ({ entry }) => entry !== null }),
    position: t.int({ nullable: true, resolve: ({ entry }) => entry?.position ?? null }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: ({ entry }) => entry?.expiresAt ?? null }),
  }),
});

const CheckoutSeatInput = builder.inputType('CheckoutSeatInput', {
  fields: (t) => ({
    key: t.string({ required: true }),
    fingerprint: t.string({ required: true }),
    user: t.string({ description: 'Required when the license counts seats per user.' }),
    department: t.string({ description: "The holder's department or cost centre, for seat analytics (seatMap.breakdown)." }),
    idempotencyKey: t.string({ description: 'A retry with the same key (per license, for 24 hours) returns the first lease; other parameters fail with IDEMPOTENCY_KEY_REUSED.' }),
    wait: t.boolean({ description: 'Queue for a seat when none is free instead of failing with NO_SEATS_AVAILABLE.' }),
  }),
});

const LeaseInput = builder.inputType('LeaseInput', {
  fields: (t) => ({ leaseId: t.id({ required: true }), key: t.string({ required: true }) }),
});

const BorrowSeatInput = builder.inputType('BorrowSeatInput', {
  fields: (t) => ({
    leaseId: t.id({ required: true }),
    key: t.string({ required: true }),
    seconds: t.int({ required: true, description: 'How long to hold the seat offline; capped at the maximum borrow period.' }),
  }),
});

// Two success types (SeatLease | SeatQueued): the errors plugin only wraps a single object type, so
// this union is declared by hand and the resolver hands expected failures back as members.
const CheckoutSeatResult = builder.unionType('CheckoutSeatResult', {
  types: [SeatLease, SeatQueued, LicensingError, ValidationError],
  resolveType: (v) => {
    const error = errorTypeMap.get(v as object);
    if (error) return error === LicensingError ? 'LicensingError' : 'ValidationError';
    return (v as GrantedLease | QueuedSeat).kind === 'lease' ? 'SeatLease' : 'SeatQueued';
  },
});

/** Hands an expected failure back as its union member, wrapped as the errors plugin does (graphql-js rejects returned Errors). */
async function asMember<T>(run: () => Promise<T>): Promise<T | LicensingError | ValidationError> {
  try {
    return await run();
  } catch (err) {
    const wrapped = wrapErrorIfMatches(err, CLIENT_ERRORS);
    if (wrapped !== err) return wrapped as LicensingError | ValidationError;
    throw err;
  }
}

builder.mutationFields((t) => ({
  checkoutSeat: t.field({
    type: CheckoutSeatResult,
    args: { input: t.arg({ type: CheckoutSeatInput, required: true }) },
    resolve: (_r, { input }, ctx) => asMember(() => checkoutSeat(ctx, input)),
  }),
  heartbeatSeat: t.field({
    type: SeatLease,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: LeaseInput, required: true }) },
    resolve: (_r, { input }, ctx) => heartbeatSeat(ctx, { leaseId: String(input.leaseId), key: input.key }),
  }),
  releaseSeat: t.field({
    type: SeatLease,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: LeaseInput, required: true }) },
    resolve: (_r, { input }, ctx) => releaseSeat(ctx, { leaseId: String(input.leaseId), key: input.key }),
  }),
  borrowSeat: t.field({
    type: SeatLease,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: BorrowSeatInput, required: true }) },
    resolve: (_r, { input }, ctx) => borrowSeat(ctx, { ...input, leaseId: String(input.leaseId) }),
  }),
}));

builder.queryFields((t) => ({
  seatQueuePosition: t.field({
    type: SeatQueuePosition,
    errors: { types: CLIENT_ERRORS },
    description: 'Where a queued client stands; a client polls this (or checks out again) until a seat is free.',
    args: { input: t.arg({ type: CheckoutSeatInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ entry: await seatQueuePosition(ctx, input) }),
  }),
}));

// ---------------------------------------------------------------------------------------------
// Admin: the seat map of a floating license.

interface HolderUsage {
  holder: string;
  leases: number;
  secondsHeld: number;
  lastSeenAt: Date;
}

const SeatHolderUsage = builder.objectRef<HolderUsage>('SeatHolderUsage').implement({
  description: 'Seat use of one device or user (per the license clientType) over a period.',
  fields: (t) => ({
    holder: t.exposeString('holder'),
    leases: t.exposeInt('leases'),
    secondsHeld: t.exposeInt('secondsHeld'),
    lastSeenAt: t.expose('lastSeenAt', { type: 'DateTime' }),
  }),
});

const SeatGroupingEnum = builder.enumType('SeatGrouping', {
  values: { HOLDER: { description: 'The device or user the seat is counted by.' }, USER: {}, DEPARTMENT: {} } as const,
});

const SeatUsageBucketType = builder.objectRef<SeatUsageBucket>('SeatUsageBucket').implement({
  description: 'Seat use of one holder, user or department on one UTC day.',
  fields: (t) => ({
    day: t.exposeString('day', { description: 'YYYY-MM-DD (UTC).' }),
    key: t.exposeString('key', { nullable: true, description: 'The holder, user or department; null when the client reported none.' }),
    leases: t.exposeInt('leases', { description: 'Leases granted that day.' }),
    secondsHeld: t.exposeInt('secondsHeld', { description: 'Seat time held within that day.' }),
    peakConcurrent: t.exposeInt('peakConcurrent', { description: 'Most seats held at once within that day.' }),
  }),
});

interface SeatMapShape {
  licenseId: string;
  seats: number | null;
  leaseSeconds: number;
}

const SeatMap = builder.objectRef<SeatMapShape>('SeatMap').implement({
  fields: (t) => ({
    seats: t.int({ nullable: true, resolve: (m) => m.seats }),
    leaseSeconds: t.int({ resolve: (m) => m.leaseSeconds }),
    inUse: t.int({
      resolve: (m, _a, ctx) => ctx.prisma.lease.count({ where: { licenseId: m.licenseId, status: 'ACTIVE', expiresAt: { gt: new Date() } } }),
    }),
    leases: t.prismaField({
      type: ['Lease'],
      description: 'Live leases, oldest first.',
      resolve: (query, m, _a, ctx) =>
        ctx.prisma.lease.findMany({ ...query, where: { licenseId: m.licenseId, status: 'ACTIVE', expiresAt: { gt: new Date() } }, orderBy: { grantedAt: 'asc' } }),
    }),
    queue: t.prismaField({
      type: [SeatQueueEntryType],
      description: 'Waiting clients, head first.',
      resolve: (query, m, _a, ctx) =>
        ctx.prisma.seatQueueEntry.findMany({
          ...query,
          where: { licenseId: m.licenseId, expiresAt: { gt: new Date() } },
          orderBy: [{ enqueuedAt: 'asc' }, { id: 'asc' }],
        }),
    }),
    usage: t.prismaField({
      type: [SeatUsageDayType],
      description: 'Peak concurrent use, grants and denials per UTC day, newest first.',
      args: { days: t.arg.int({ defaultValue: 30 }) },
      resolve: (query, m, { days }, ctx) =>
        ctx.prisma.seatUsageDay.findMany({ ...query, where: { licenseId: m.licenseId }, orderBy: { day: 'desc' }, take: Math.min(Math.max(days ?? 30, 1), 366) }),
    }),
    breakdown: t.field({
      type: [SeatUsageBucketType],
      description: 'Seat use per UTC day and per holder, user or department over the last `days` days (1 to 90), newest day first.',
      args: { groupBy: t.arg({ type: SeatGroupingEnum, defaultValue: 'DEPARTMENT' }), days: t.arg.int({ defaultValue: 30 }) },
      resolve: (m, { groupBy, days }, ctx) => {
        if (days === null || days === undefined || days < 1 || days > 90) {
          throw new GraphQLError('days must be 1 to 90', { extensions: { code: 'BAD_USER_INPUT' } });
        }
        return seatUsageBreakdown(ctx, m.licenseId, groupBy ?? 'DEPARTMENT', days);
      },
    }),
    holders: t.field({
      type: [SeatHolderUsage],
      description: 'Who held seats in the last `days` days and for how long, most first (at most 200).',
      args: { days: t.arg.int({ defaultValue: 30 }) },
      resolve: (m, { days }, ctx) => {
        const now = new Date();
        const since = new Date(now.getTime() - Math.min(Math.max(days ?? 30, 1), 366) * 86_400_000);
        // Seats held within the period (granted in it or before), and the seat time within it.
        return ctx.prisma.$queryRaw<HolderUsage[]>`
          WITH l AS (
            SELECT holder, "renewedAt", GREATEST("grantedAt", ${since}::timestamp(3)) AS s,
              LEAST(COALESCE("endedAt", ${now}::timestamp(3)), "expiresAt", ${now}::timestamp(3)) AS e
            FROM "Lease"
            WHERE "licenseId" = ${m.licenseId}::uuid AND status IN ('ACTIVE', 'EXPIRED', 'RELEASED')
              AND "expiresAt" > ${since}::timestamp(3) AND "grantedAt" < ${now}::timestamp(3)
          )
          SELECT holder, count(*)::int AS leases, max("renewedAt") AS "lastSeenAt", COALESCE(sum(EXTRACT(EPOCH FROM (e - s))), 0)::int AS "secondsHeld"
          FROM l WHERE e > s
          GROUP BY holder ORDER BY "secondsHeld" DESC, holder LIMIT 200`;
      },
    }),
  }),
});

const ReleaseLeaseInput = builder.inputType('ReleaseLeaseInput', {
  fields: (t) => ({ leaseId: t.id({ required: true, description: "A live lease's id, as the seat map lists it." }) }),
});

builder.mutationFields((t) => ({
  releaseLease: t.prismaField({
    type: 'Lease',
    description:
      "Frees a floating seat before its lease ends (a crashed client, a user who left the app open); its holder's next heartbeat gets LEASE_EXPIRED and may check out again. A borrowed seat cannot be taken back (CONFLICT).",
    authScopes: { role: 'SUPPORT' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: ReleaseLeaseInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const id = await releaseLeaseByOperator(ctx, parseId(String(input.leaseId), 'Lease', 'leaseId'));
      return ctx.prisma.lease.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
}));

builder.queryFields((t) => ({
  seatMap: t.field({
    type: SeatMap,
    authScopes: { role: 'READ_ONLY' },
    errors: { types: ADMIN_ERRORS },
    args: { licenseId: t.arg.id({ required: true }) },
    resolve: async (_r, args, ctx) => {
      const licenseId = parseId(String(args.licenseId), 'License', 'licenseId');
      const license = await ctx.prisma.license.findFirst({
        where: { id: licenseId, ...tenantWhere(ctx.actor) },
        select: { seats: true, leaseSeconds: true },
      });
      if (!license) throw new NotFoundError('License');
      return { licenseId, seats: license.seats, leaseSeconds: license.leaseSeconds ?? DEFAULT_LEASE_SECONDS };
    },
  }),
}));
