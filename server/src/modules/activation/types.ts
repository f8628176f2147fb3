import { createContextCache } from '@pothos/core';
import type { License } from '@tessera/db/client';
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { builder } from '../../builder.ts';
import { ValidationError } from '../../errors.ts';
import type { Context } from '../../context.ts';
import { parseId } from '../common/ids.ts';
import { nodeWhere, tenantWhere } from '../common/tenancy.ts';
import { ADMIN_ERRORS, CLIENT_ERRORS, LicensingErrorCodeEnum } from '../common/types.ts';
import { entitlementsOf } from '../catalog/terms.ts';
import { Entitlement, LicenseTypeEnum } from '../catalog/types.ts';
import { LicenseStatusEnum } from '../licenses/enums.ts';
import { graceEndsAt, inGracePeriod, licenseStatus } from '../licenses/service.ts';
import {
  activate,
  type ActivateResult,
  deactivate,
  heartbeat,
  type HeartbeatResult,
  type LoadedActivation,
  releaseActivation,
  validateLicense,
  type ValidationResult,
} from './service.ts';
import {
  type ActivationDay,
  activationsPerDay,
  type ActivationsPerDay as PerDay,
  type Breakdown,
  deviceInsights,
  type DeviceInsights as Insights,
  isTimeZone,
  MAX_ACTIVATION_DAYS,
  MAX_SEEN_WITHIN_DAYS,
  TOP_VALUES,
} from './insights.ts';

export const ActivationStatusEnum = builder.enumType('ActivationStatus', { values: ['ACTIVE', 'INACTIVE', 'RELEASED'] as const });

/*
 * The answers of the client operations resolve from the rows their services already hold (the batched
 * statements return them), so the types they reach are plain object types: a Prisma-mapped field would
 * plan a query from the selection on every call (measured at a tenth of a heartbeat's server time) only
 * to find the rows already there. Admin reads of an activation's license go through a per-request loader.
 */

/** What a client may know about its own license (CONTRACT.md). */
export const LicenseInfo = builder.objectRef<License>('LicenseInfo').implement({
  fields: (t) => ({
    status: t.field({ type: LicenseStatusEnum, resolve: (l) => licenseStatus(l) }),
    graceEndsAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'A subscription with a grace period keeps serving the devices it has until then, past expiresAt.',
      resolve: (l) => graceEndsAt(l),
    }),
    inGracePeriod: t.boolean({ description: 'Expired (renewal pending) but still serving this device.', resolve: (l) => inGracePeriod(l) }),
    type: t.expose('type', { type: LicenseTypeEnum }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    revision: t.exposeInt('revision'),
    maxActivations: t.exposeInt('maxActivations', { nullable: true }),
    activationsUsed: t.exposeInt('activationsUsed'),
    features: t.exposeStringList('features'),
    entitlements: t.field({ type: [Entitlement], resolve: (l) => entitlementsOf(l) }),
  }),
});

/** Licenses by id, batched per request (an admin listing activations with their license). */
const licenseLoader = createContextCache(
  (ctx: Context) =>
    new DataLoader<string, License>(async (ids) => {
      const rows = await ctx.prisma.license.findMany({ where: { id: { in: [...ids] } } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id) ?? new Error(`license ${id} not found`));
    }),
);

export const ActivationType = builder.prismaNode('Activation', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  // Another tenant's id, or an unknown one, resolves to null rather than an internal error.
  nullable: true,
  fields: (t) => ({
    status: t.expose('status', { type: ActivationStatusEnum }),
    fingerprint: t.exposeString('fingerprint'),
    activatedAt: t.expose('activatedAt', { type: 'DateTime' }),
    lastHeartbeatAt: t.expose('lastHeartbeatAt', { type: 'DateTime', nullable: true }),
    license: t.field({
      type: LicenseInfo,
      resolve: (a, _args, ctx) => (a as Partial<LoadedActivation>).license ?? licenseLoader(ctx).load(a.licenseId),
    }),
    hostname: t.exposeString('hostname', { nullable: true }),
    platform: t.exposeString('platform', { nullable: true }),
    osVersion: t.exposeString('osVersion', { nullable: true }),
    appVersion: t.exposeString('appVersion', { nullable: true }),
    goodwill: t.exposeBoolean('goodwill'),
    offline: t.exposeBoolean('offline'),
    releasedAt: t.expose('releasedAt', { type: 'DateTime', nullable: true }),
    heartbeats: t.relation('heartbeats', {
      description: "The device's recent heartbeats, newest first: last seen, version and OS over time (admin only).",
      authScopes: { member: true },
      args: { last: t.arg.int({ defaultValue: 20, description: 'At most 500.' }) },
      query: (args) => ({ orderBy: [{ at: 'desc' }, { id: 'desc' }], take: Math.min(Math.max(args.last ?? 20, 1), 500) }),
    }),
  }),
});

builder.prismaObject('HeartbeatSample', {
  fields: (t) => ({
    at: t.expose('at', { type: 'DateTime' }),
    appVersion: t.exposeString('appVersion', { nullable: true }),
    osVersion: t.exposeString('osVersion', { nullable: true }),
    platform: t.exposeString('platform', { nullable: true }),
  }),
});

// ---------------------------------------------------------------------------------------------
// Client operations (CONTRACT.md): authenticated by the key in the input, no bearer token.

const FingerprintComponentInput = builder.inputType('FingerprintComponentInput', {
  fields: (t) => ({
    kind: t.string({ required: true, description: 'MAC, CPU, HOST_ID, DISK, MACHINE_ID, ...' }),
    value: t.string({ required: true }),
  }),
});

export const ClientInfoInput = builder.inputType('ClientInfoInput', {
  fields: (t) => ({
    hostname: t.string(),
    platform: t.string(),
    osVersion: t.string(),
    appVersion: t.string(),
  }),
});

const ActivateInput = builder.inputType('ActivateInput', {
  fields: (t) => ({
    key: t.string({ required: true, description: 'A license key or a single-use token key.' }),
    fingerprint: t.string({ required: true, description: 'Stable device id computed by the SDK.' }),
    components: t.field({ type: [FingerprintComponentInput] }),
    client: t.field({ type: ClientInfoInput }),
    idempotencyKey: t.string({ description: 'A retry with the same key returns the first result.' }),
  }),
});

const HeartbeatInput = builder.inputType('HeartbeatInput', {
  fields: (t) => ({
    key: t.string({ required: true }),
    fingerprint: t.string({ required: true }),
    revision: t.int({ description: 'The license revision the client holds.' }),
    client: t.field({ type: ClientInfoInput }),
  }),
});

const DeactivateInput = builder.inputType('DeactivateInput', {
  fields: (t) => ({ key: t.string({ required: true }), fingerprint: t.string({ required: true }) }),
});

const ValidateInput = builder.inputType('ValidateInput', {
  fields: (t) => ({
    key: t.string({ required: true }),
    fingerprint: t.string(),
    version: t.string(),
    feature: t.string(),
    quantity: t.int({
      description: 'With `feature`: the amount wanted of a numeric entitlement ("may I have 12 projects?"); valid when it is at most the limit, else FEATURE_NOT_ENTITLED.',
    }),
  }),
});

const activationById = (id: string) => ({ where: { id } });

/** The activation the service already holds with its license; otherwise a read. */
function activationOf(p: { activationId: string; loaded?: LoadedActivation }, ctx: Context) {
  return p.loaded ?? ctx.prisma.activation.findUniqueOrThrow({ where: { id: p.activationId }, include: { license: true } });
}

const ActivateSuccess = builder.objectRef<ActivateResult>('ActivateSuccess').implement({
  fields: (t) => ({
    activation: t.field({ type: ActivationType, resolve: (p, _a, ctx) => activationOf(p, ctx) }),
    token: t.exposeString('token', { description: 'Compact JWS, typ "tessera-activation+jwt".' }),
    reused: t.exposeBoolean('reused', { description: 'True when this device already held this activation.' }),
    goodwill: t.exposeBoolean('goodwill', { description: 'True when the activation sits in the goodwill (soft-limit) zone.' }),
  }),
});

const HeartbeatSuccess = builder.objectRef<HeartbeatResult>('HeartbeatSuccess').implement({
  fields: (t) => ({
    activation: t.field({ type: ActivationType, resolve: (p, _a, ctx) => activationOf(p, ctx) }),
    updateAvailable: t.exposeBoolean('updateAvailable', { description: 'The license changed since `revision`.' }),
    token: t.exposeString('token', { nullable: true, description: 'A fresh activation token when updateAvailable.' }),
    nextHeartbeatBy: t.expose('nextHeartbeatBy', { type: 'DateTime' }),
  }),
});

const DeactivateSuccess = builder.objectRef<{ activationId: string }>('DeactivateSuccess').implement({
  fields: (t) => ({
    activation: t.prismaField({
      type: 'Activation',
      resolve: (query, p, _a, ctx) => ctx.prisma.activation.findUniqueOrThrow({ ...query, ...activationById(p.activationId) }),
    }),
  }),
});

const Validation = builder.objectRef<ValidationResult>('Validation').implement({
  fields: (t) => ({
    valid: t.exposeBoolean('valid'),
    code: t.field({ type: LicensingErrorCodeEnum, nullable: true, resolve: (v) => v.code }),
    license: t.field({
      type: LicenseInfo,
      nullable: true,
      resolve: (v, _a, ctx) => v.license ?? (v.licenseId ? ctx.prisma.license.findUnique({ where: { id: v.licenseId } }) : null),
    }),
  }),
});

builder.mutationFields((t) => ({
  activate: t.field({
    type: ActivateSuccess,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: ActivateInput, required: true }) },
    resolve: (_r, { input }, ctx) => activate(ctx, input),
  }),
  heartbeat: t.field({
    type: HeartbeatSuccess,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: HeartbeatInput, required: true }) },
    resolve: (_r, { input }, ctx) => heartbeat(ctx, input),
  }),
  deactivate: t.field({
    type: DeactivateSuccess,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: DeactivateInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ activationId: await deactivate(ctx, input) }),
  }),
}));

builder.queryFields((t) => ({
  validateLicense: t.field({
    type: Validation,
    args: { input: t.arg({ type: ValidateInput, required: true }) },
    resolve: async (_r, { input }, ctx) => {
      try {
        return await validateLicense(ctx, input);
      } catch (err) {
        // Validation is not a union (CONTRACT.md): oversized input is a plain input error.
        if (err instanceof ValidationError) throw new GraphQLError(err.message, { extensions: { code: 'BAD_USER_INPUT' } });
        throw err;
      }
    },
  }),
}));

// ---------------------------------------------------------------------------------------------
// Admin

const ReleaseActivationInput = builder.inputType('ReleaseActivationInput', {
  fields: (t) => ({ activationId: t.id({ required: true }) }),
});

builder.mutationFields((t) => ({
  releaseActivation: t.prismaField({
    type: 'Activation',
    description: "Frees a device's activation at once (lost machine, reinstall); its next call gets ACTIVATION_RELEASED.",
    authScopes: { role: 'SUPPORT' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: ReleaseActivationInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const id = await releaseActivation(ctx, parseId(String(input.activationId), 'Activation', 'activationId'));
      return ctx.prisma.activation.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
}));

// ---------------------------------------------------------------------------------------------
// Device insights

const DeviceShare = builder.objectRef<Breakdown['values'][number]>('DeviceShare').implement({
  fields: (t) => ({
    value: t.exposeString('value', { nullable: true, description: 'null: the devices did not report it.' }),
    devices: t.exposeInt('devices'),
  }),
});

const DeviceBreakdown = builder.objectRef<Breakdown>('DeviceBreakdown').implement({
  fields: (t) => ({
    values: t.field({ type: [DeviceShare], description: `Most devices first, at most ${TOP_VALUES}.`, resolve: (b) => b.values }),
    others: t.exposeInt('others', { description: 'Devices whose value is not listed in `values`.' }),
  }),
});

const DeviceInsights = builder.objectRef<Insights>('DeviceInsights').implement({
  fields: (t) => ({
    seenWithinDays: t.exposeInt('seenWithinDays'),
    since: t.expose('since', { type: 'DateTime' }),
    devices: t.exposeInt('devices', { description: 'Active devices heard from (a heartbeat, or their activation) since `since`.' }),
    silentDevices: t.exposeInt('silentDevices', { description: 'Active devices not heard from since `since`, still holding their activation.' }),
    appVersions: t.field({ type: DeviceBreakdown, description: 'The devices heard from, by the app version they last reported.', resolve: (i) => i.appVersions }),
    platforms: t.field({ type: DeviceBreakdown, description: 'The devices heard from, by platform.', resolve: (i) => i.platforms }),
    osVersions: t.field({ type: DeviceBreakdown, description: 'The devices heard from, by OS version.', resolve: (i) => i.osVersions }),
  }),
});

/** A number of days an argument asks for, 1 to `max`, else a ValidationError on `path`. */
function dayCount(days: number, max: number, path: string): number {
  if (!Number.isInteger(days) || days < 1 || days > max) throw ValidationError.field(path, `must be 1 to ${max}`);
  return days;
}

builder.queryFields((t) => ({
  deviceInsights: t.field({
    type: DeviceInsights,
    description: "Who runs what: the tenant's active devices (or one product's) by the app version, platform and OS version they last reported.",
    authScopes: { role: 'READ_ONLY' },
    errors: { types: ADMIN_ERRORS },
    args: {
      productId: t.arg.id(),
      seenWithinDays: t.arg.int({ defaultValue: 30, description: `A device counts as heard from when its last heartbeat is this recent (1 to ${MAX_SEEN_WITHIN_DAYS}).` }),
    },
    resolve: (_r, args, ctx) => {
      const days = dayCount(args.seenWithinDays ?? 30, MAX_SEEN_WITHIN_DAYS, 'seenWithinDays');
      return deviceInsights(ctx, tenantWhere(ctx.actor).tenantId, {
        productId: args.productId == null ? null : parseId(String(args.productId), 'Product', 'productId'),
        seenWithinDays: days,
      });
    },
  }),
}));

// ---------------------------------------------------------------------------------------------
// Activations per day

const ActivationDayRef = builder.objectRef<ActivationDay>('ActivationDay').implement({
  fields: (t) => ({
    date: t.exposeString('date', { description: 'The calendar day, YYYY-MM-DD, in the time zone asked for.' }),
    activations: t.exposeInt('activations', { description: 'Devices activated that day (new activations; a device reusing its own is not counted).' }),
  }),
});

const ActivationsPerDayRef = builder.objectRef<PerDay>('ActivationsPerDay').implement({
  fields: (t) => ({
    timeZone: t.exposeString('timeZone'),
    days: t.field({ type: [ActivationDayRef], description: 'Oldest first; the last is today in `timeZone`; days without activations count 0.', resolve: (p) => p.days }),
    cursor: t.exposeID('cursor', {
      nullable: true,
      description:
        'The `activity` feed cursor the counts are exact up to: the `activation.created` events of `activity(after: cursor)` are the activations not counted here, each once.',
    }),
  }),
});

builder.queryFields((t) => ({
  activationsPerDay: t.field({
    type: ActivationsPerDayRef,
    description: "The tenant's device activations per calendar day over the last `days` days (today included), counted by the database.",
    authScopes: { role: 'READ_ONLY' },
    errors: { types: ADMIN_ERRORS },
    args: {
      days: t.arg.int({ defaultValue: 14, description: `1 to ${MAX_ACTIVATION_DAYS}.` }),
      timeZone: t.arg.string({ defaultValue: 'UTC', description: 'IANA time zone whose calendar days are counted, e.g. "Europe/Berlin".' }),
    },
    resolve: (_r, args, ctx) => {
      const days = dayCount(args.days ?? 14, MAX_ACTIVATION_DAYS, 'days');
      const timeZone = args.timeZone ?? 'UTC';
      if (!isTimeZone(timeZone)) throw ValidationError.field('timeZone', 'must be an IANA time zone name, e.g. "Europe/Berlin"');
      return activationsPerDay(ctx, tenantWhere(ctx.actor).tenantId, { days, timeZone });
    },
  }),
}));
