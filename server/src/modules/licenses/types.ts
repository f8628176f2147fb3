import type { Prisma } from '@tessera/db/client';
import { GraphQLError } from 'graphql';
import { builder } from '../../builder.ts';
import type { Actor } from '../../context.ts';
import { ImportError } from '../../errors.ts';
import { ADMIN_ERRORS } from '../common/types.ts';
import { likeLiteral } from '../common/db.ts';
import { parseId } from '../common/ids.ts';
import { keysetPage, type SortKey } from '../common/pages.ts';
import { nodeWhere, tenantWhere } from '../common/tenancy.ts';
import { ActivationStatusEnum } from '../activation/types.ts';
import {
  ClientTypeEnum,
  DeploymentModeEnum,
  entitlementsField,
  FingerprintMatchEnum,
  LicenseTypeEnum,
  MeterEntitlement,
  ProvisioningEnum,
  termInputFields,
  withoutNullLists,
} from '../catalog/types.ts';
import type { MeterTerm } from '../catalog/terms.ts';
import { LicenseStatusEnum, SyncStateEnum } from './enums.ts';
import { importLicenses } from './import.ts';
import { parseKey } from './keys.ts';
import { createLicense, graceEndsAt, inGracePeriod, licenseStatus, renewLicense, statusWhere, transitionLicense, updateLicense } from './service.ts';

const DAY_MS = 86_400_000;

builder.prismaNode('License', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  // Another tenant's id, or a deleted row, resolves to null rather than an internal error.
  nullable: true,
  authScopes: { member: true },
  fields: (t) => ({
    key: t.exposeString('key'),
    name: t.exposeString('name', { nullable: true }),
    status: t.field({ type: LicenseStatusEnum, select: { state: true, expiresAt: true }, resolve: (l) => licenseStatus(l) }),
    type: t.expose('type', { type: LicenseTypeEnum }),
    product: t.relation('product'),
    edition: t.relation('edition'),
    customer: t.relation('customer', { nullable: true }),
    startsAt: t.expose('startsAt', { type: 'DateTime', nullable: true }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    revision: t.exposeInt('revision'),
    syncState: t.expose('syncState', { type: SyncStateEnum }),
    provisioning: t.expose('provisioning', { type: ProvisioningEnum }),
    clientType: t.expose('clientType', { type: ClientTypeEnum }),
    maxActivations: t.exposeInt('maxActivations', { nullable: true }),
    goodwillActivations: t.exposeInt('goodwillActivations'),
    activationsUsed: t.exposeInt('activationsUsed'),
    seats: t.exposeInt('seats', { nullable: true }),
    leaseSeconds: t.exposeInt('leaseSeconds', { nullable: true }),
    heartbeatSeconds: t.exposeInt('heartbeatSeconds', { nullable: true }),
    inactivityReclaimSeconds: t.exposeInt('inactivityReclaimSeconds', { nullable: true }),
    gracePeriodSeconds: t.exposeInt('gracePeriodSeconds', { nullable: true }),
    graceEndsAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'SUBSCRIPTION with a grace period: until when it keeps serving its devices past expiresAt.',
      select: { type: true, expiresAt: true, gracePeriodSeconds: true },
      resolve: (l) => graceEndsAt(l),
    }),
    inGracePeriod: t.boolean({
      description: 'Expired, but still serving its devices and seats (renewal pending).',
      select: { type: true, expiresAt: true, gracePeriodSeconds: true },
      resolve: (l) => inGracePeriod(l),
    }),
    deploymentMode: t.expose('deploymentMode', { type: DeploymentModeEnum }),
    allowOffline: t.exposeBoolean('allowOffline'),
    fingerprintMatch: t.expose('fingerprintMatch', { type: FingerprintMatchEnum }),
    features: t.exposeStringList('features'),
    meters: t.field({ type: [MeterEntitlement], select: { meters: true }, resolve: (l) => l.meters as unknown as MeterTerm[] }),
    entitlements: entitlementsField(t),
    allowedVersions: t.exposeString('allowedVersions', { nullable: true }),
    metadata: t.expose('metadata', { type: 'JSON' }),
    suspendedAt: t.expose('suspendedAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    tokenKeys: t.relation('tokenKeys', { authScopes: { role: 'SUPPORT' }, query: { orderBy: { createdAt: 'asc' } } }),
    activations: t.relatedConnection('activations', {
      cursor: 'id',
      totalCount: true,
      args: { status: t.arg({ type: ActivationStatusEnum }) },
      query: (args) => ({
        where: args.status ? { status: args.status } : {},
        orderBy: [{ activatedAt: 'desc' }, { id: 'asc' }],
      }),
    }),
  }),
});

builder.prismaObject('TokenKey', {
  fields: (t) => ({
    id: t.exposeID('id'),
    key: t.exposeString('key'),
    usedAt: t.expose('usedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

interface LicenseFilterArgs {
  customerId?: string | number | null;
  productId?: string | number | null;
  editionId?: string | number | null;
  status?: 'ACTIVE' | 'EXPIRED' | 'SUSPENDED' | 'REVOKED' | null;
  expiringWithinDays?: number | null;
  search?: string | null;
}

function filterId(value: string | number | null | undefined, typename: string, path: string) {
  if (value === null || value === undefined) return undefined;
  try {
    return parseId(String(value), typename, path);
  } catch {
    throw new GraphQLError(`${path} is not a ${typename} id`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
}

function licenseFilter(actor: Actor, args: LicenseFilterArgs): Prisma.LicenseWhereInput {
  const now = new Date();
  const and: Prisma.LicenseWhereInput[] = [tenantWhere(actor)];
  const customerId = filterId(args.customerId, 'Customer', 'customerId');
  const productId = filterId(args.productId, 'Product', 'productId');
  const editionId = filterId(args.editionId, 'Edition', 'editionId');
  if (customerId) and.push({ customerId });
  if (productId) and.push({ productId });
  if (editionId) and.push({ editionId });
  if (args.status) and.push(statusWhere(args.status, now));
  if (args.expiringWithinDays !== null && args.expiringWithinDays !== undefined) {
    if (args.expiringWithinDays < 0 || args.expiringWithinDays > 36_500) {
      throw new GraphQLError('expiringWithinDays must be between 0 and 36500', { extensions: { code: 'BAD_USER_INPUT' } });
    }
    // A revoked license ends for good; its old expiry is nothing to renew (the expiring-soon alerts skip it too).
    and.push({ state: { not: 'REVOKED' }, expiresAt: { gt: now, lte: new Date(now.getTime() + args.expiringWithinDays * DAY_MS) } });
  }
  const search = args.search?.trim().slice(0, 200);
  if (search) {
    const key = parseKey(search);
    and.push(
      key
        ? { key: key.key }
        : {
            OR: [
              { key: { startsWith: likeLiteral(search.toUpperCase()) } },
              { name: { contains: likeLiteral(search), mode: 'insensitive' } },
              { customer: { name: { contains: likeLiteral(search), mode: 'insensitive' } } },
              { customer: { email: { contains: likeLiteral(search), mode: 'insensitive' } } },
              // A support call names a machine: its fingerprint, or part of its host name (any device the
              // license has had, released ones too). The devices are looked up apart from their licenses, so
              // the tenant is repeated to keep that lookup to its own rows.
              { activations: { some: { ...tenantWhere(actor), OR: [{ fingerprint: search }, { hostname: { contains: likeLiteral(search), mode: 'insensitive' } }] } } },
            ],
          },
    );
  }
  return { AND: and };
}

/** The license list's order, newest first; its cursor holds these values. */
const LICENSE_ORDER: SortKey[] = [
  { field: 'createdAt', kind: 'date', direction: 'desc' },
  { field: 'id', kind: 'uuid', direction: 'desc' },
];

builder.queryFields((t) => ({
  licenses: t.prismaConnection({
    type: 'License',
    cursor: 'tenantId_createdAt_id',
    authScopes: { role: 'READ_ONLY' },
    args: {
      customerId: t.arg.id(),
      productId: t.arg.id(),
      editionId: t.arg.id(),
      status: t.arg({ type: LicenseStatusEnum }),
      expiringWithinDays: t.arg.int({ description: 'Only licenses that expire in the next N days (not already expired, nor revoked).' }),
      search: t.arg.string({ description: "A license key; or part of the license's name, its customer's name or email, or a device's host name; or a device's exact fingerprint." }),
    },
    totalCount: (_p, args, ctx) => ctx.prisma.license.count({ where: licenseFilter(ctx.actor, args) }),
    resolve: (query, _r, args, ctx) => {
      const page = keysetPage(query, LICENSE_ORDER);
      return ctx.prisma.license.findMany({ ...page.query, where: { AND: [licenseFilter(ctx.actor, args), page.where] }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    },
  }),
  licenseByKey: t.prismaField({
    type: 'License',
    nullable: true,
    authScopes: { role: 'READ_ONLY' },
    args: { key: t.arg.string({ required: true }) },
    resolve: (query, _r, { key }, ctx) => {
      const parsed = parseKey(key);
      // A key that does not parse (a typo breaks its checksum) or a token key names no license: the lookup of
      // an empty key finds none, and uses the selection as every prismaField must (a bare `return null` fails
      // outside production when the selection reads relations).
      const licenseKey = parsed?.kind === 'LIC' ? parsed.key : '';
      return ctx.prisma.license.findFirst({ ...query, where: { key: licenseKey, ...tenantWhere(ctx.actor) } });
    },
  }),
}));

const issueInputFields = (t: Parameters<typeof termInputFields>[0]) => ({
  customerId: t.id(),
  name: t.string(),
  startsAt: t.field({ type: 'DateTime' }),
  expiresAt: t.field({ type: 'DateTime', description: 'Fixed expiry; replaces the edition validity.' }),
  metadata: t.field({ type: 'JSON' }),
  ...termInputFields(t),
});

const CreateLicenseInput = builder.inputType('CreateLicenseInput', {
  fields: (t) => ({
    editionId: t.id({ required: true }),
    tokenCount: t.int({ description: 'Single-use token keys to issue with the license (each activates one device).' }),
    licenseType: t.field({ type: LicenseTypeEnum }),
    ...issueInputFields(t),
  }),
});

const UpdateLicenseInput = builder.inputType('UpdateLicenseInput', {
  fields: (t) => {
    const { validityDays: _v, ...fields } = issueInputFields(t);
    return { licenseId: t.id({ required: true }), ...fields };
  },
});

const RenewLicenseInput = builder.inputType('RenewLicenseInput', {
  fields: (t) => ({
    licenseId: t.id({ required: true }),
    extendDays: t.int({ description: 'Days added to the current expiry (or to now, if it has lapsed).' }),
    expiresAt: t.field({ type: 'DateTime' }),
    licenseType: t.field({ type: LicenseTypeEnum, description: 'Convert, e.g. TRIAL -> SUBSCRIPTION.' }),
  }),
});

const LicenseIdInput = builder.inputType('LicenseIdInput', { fields: (t) => ({ licenseId: t.id({ required: true }) }) });

const ImportFormatEnum = builder.enumType('ImportFormat', { values: ['CSV', 'JSONL'] as const });
const ImportLicensesInput = builder.inputType('ImportLicensesInput', {
  fields: (t) => ({
    format: t.field({ type: ImportFormatEnum, required: true }),
    data: t.string({ required: true, description: 'CSV with a header row, or one JSON object per line.' }),
  }),
});

const CreateLicensePayload = builder.objectRef<{ id: string; tokenKeys: string[] }>('CreateLicensePayload').implement({
  fields: (t) => ({
    license: t.prismaField({
      type: 'License',
      resolve: (query, p, _a, ctx) => ctx.prisma.license.findUniqueOrThrow({ ...query, where: { id: p.id } }),
    }),
    tokenKeys: t.exposeStringList('tokenKeys'),
  }),
});

const ImportLicensesPayload = builder.objectRef<{ ids: string[] }>('ImportLicensesPayload').implement({
  fields: (t) => ({
    count: t.int({ resolve: (p) => p.ids.length }),
    licenses: t.prismaField({
      type: ['License'],
      resolve: (query, p, _a, ctx) => ctx.prisma.license.findMany({ ...query, where: { id: { in: p.ids } }, orderBy: { createdAt: 'asc' } }),
    }),
  }),
});

builder.mutationFields((t) => ({
  createLicense: t.field({
    type: CreateLicensePayload,
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateLicenseInput, required: true }) },
    resolve: async (_r, { input }, ctx) => {
      const { editionId, customerId, ...rest } = input;
      const { license, tokenKeys } = await createLicense(ctx, {
        ...(withoutNullLists(rest) as object),
        editionId: parseId(String(editionId), 'Edition', 'editionId'),
        customerId: customerId ? parseId(String(customerId), 'Customer', 'customerId') : null,
      });
      return { id: license.id, tokenKeys };
    },
  }),
  updateLicense: t.prismaField({
    type: 'License',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: UpdateLicenseInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { licenseId, customerId, ...rest } = input;
      const license = await updateLicense(ctx, {
        ...(withoutNullLists(rest) as object),
        licenseId: parseId(String(licenseId), 'License', 'licenseId'),
        customerId: customerId === undefined ? undefined : customerId === null ? null : parseId(String(customerId), 'Customer', 'customerId'),
      });
      return ctx.prisma.license.findUniqueOrThrow({ ...query, where: { id: license.id } });
    },
  }),
  renewLicense: t.prismaField({
    type: 'License',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: RenewLicenseInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const license = await renewLicense(ctx, { ...input, licenseId: parseId(String(input.licenseId), 'License', 'licenseId') });
      return ctx.prisma.license.findUniqueOrThrow({ ...query, where: { id: license.id } });
    },
  }),
  ...Object.fromEntries(
    (
      [
        ['suspendLicense', 'suspend', 'SUPPORT'],
        ['reinstateLicense', 'reinstate', 'SUPPORT'],
        ['revokeLicense', 'revoke', 'ADMIN'],
      ] as const
    ).map(([field, action, role]) => [
      field,
      t.prismaField({
        type: 'License',
        authScopes: { role },
        errors: { types: ADMIN_ERRORS },
        args: { input: t.arg({ type: LicenseIdInput, required: true }) },
        resolve: async (query, _r, { input }, ctx) => {
          const license = await transitionLicense(ctx, parseId(String(input.licenseId), 'License', 'licenseId'), action);
          return ctx.prisma.license.findUniqueOrThrow({ ...query, where: { id: license.id } });
        },
      }),
    ]),
  ),
  importLicenses: t.field({
    type: ImportLicensesPayload,
    authScopes: { role: 'ADMIN' },
    errors: { types: [...ADMIN_ERRORS, ImportError] },
    args: { input: t.arg({ type: ImportLicensesInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ ids: await importLicenses(ctx, input.format, input.data) }),
  }),
}));
