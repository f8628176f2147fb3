import type { InputFieldBuilder } from '@pothos/core';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../builder.ts';
import { ADMIN_ERRORS } from '../common/types.ts';
import { likeLiteral } from '../common/db.ts';
import { parseId } from '../common/ids.ts';
import { keysetPage, type SortKey } from '../common/pages.ts';
import { nodeWhere, tenantWhere } from '../common/tenancy.ts';
import {
  createCustomer,
  deleteCustomer,
  createEdition,
  createFeature,
  createMeter,
  createProduct,
  deleteEdition,
  deleteFeature,
  deleteMeter,
  deleteProduct,
  setEditionArchived,
  updateEdition,
  updateFeature,
  updateMeter,
  updateCustomer,
  updateProduct,
} from './service.ts';
import { type EntitlementTerm, entitlementsOf, LICENSE_TYPES, METER_PERIODS, type MeterTerm } from './terms.ts';

export const LicenseTypeEnum = builder.enumType('LicenseType', { values: LICENSE_TYPES });
export const ProvisioningEnum = builder.enumType('Provisioning', { values: ['NAMED', 'FLOATING'] as const });
export const ClientTypeEnum = builder.enumType('ClientType', { values: ['DEVICES', 'USERS'] as const });
export const DeploymentModeEnum = builder.enumType('DeploymentMode', { values: ['ONLINE', 'OFFLINE', 'HYBRID'] as const });
export const FingerprintMatchEnum = builder.enumType('FingerprintMatch', { values: ['EXACT', 'ANY_TWO', 'MAJORITY'] as const });
export const MeterPeriodEnum = builder.enumType('MeterPeriod', { values: METER_PERIODS });

export const MeterEntitlement = builder.objectRef<MeterTerm>('MeterEntitlement').implement({
  fields: (t) => ({
    meter: t.exposeString('meter'),
    quota: t.exposeInt('quota'),
    period: t.expose('period', { type: MeterPeriodEnum }),
  }),
});

export const MeterEntitlementInput = builder.inputType('MeterEntitlementInput', {
  fields: (t) => ({
    meter: t.string({ required: true }),
    quota: t.int({ required: true }),
    period: t.field({ type: MeterPeriodEnum, required: true }),
  }),
});

export const Entitlement = builder.objectRef<EntitlementTerm>('Entitlement').implement({
  description: 'A feature with a numeric limit, e.g. projects = 10. Entitled when the limit is above 0.',
  fields: (t) => ({
    feature: t.exposeString('feature'),
    limit: t.exposeInt('limit'),
  }),
});

export const EntitlementInput = builder.inputType('EntitlementInput', {
  fields: (t) => ({
    feature: t.string({ required: true, description: "A feature code of the product; it must not also be in `features`." }),
    limit: t.int({ required: true, description: '0 to 2147483647.' }),
  }),
});

/** The `entitlements` output field of an Edition, License or LicenseInfo (stored as JSON). */
// biome-ignore lint/suspicious/noExplicitAny: Pothos field builder generics
export function entitlementsField(t: any) {
  return t.field({ type: [Entitlement], select: { entitlements: true }, resolve: (row: { entitlements: unknown }) => entitlementsOf(row) });
}

/** The policy-term input fields shared by editions and license overrides; all optional. */
// biome-ignore lint/suspicious/noExplicitAny: Pothos input builder generics
export function termInputFields(t: InputFieldBuilder<any, 'InputObject'>) {
  return {
    provisioning: t.field({ type: ProvisioningEnum }),
    clientType: t.field({ type: ClientTypeEnum }),
    validityDays: t.int({ description: 'Days a license is valid from issue; null = perpetual.' }),
    maxActivations: t.int(),
    goodwillActivations: t.int({ description: 'Activations allowed beyond maxActivations (soft limit); each raises a compliance event.' }),
    seats: t.int(),
    leaseSeconds: t.int(),
    heartbeatSeconds: t.int(),
    inactivityReclaimSeconds: t.int(),
    gracePeriodSeconds: t.int({ description: 'SUBSCRIPTION only: how long past expiry the devices and seats it serves keep working (renewal pending).' }),
    deploymentMode: t.field({ type: DeploymentModeEnum }),
    allowOffline: t.boolean(),
    fingerprintMatch: t.field({ type: FingerprintMatchEnum }),
    features: t.stringList(),
    meters: t.field({ type: [MeterEntitlementInput] }),
    entitlements: t.field({
      type: [EntitlementInput],
      description: 'Numeric entitlements (at most 100). A feature is either in `features` (on/off) or here (with a limit), not both.',
    }),
    allowedVersions: t.string({ description: 'A semver range, e.g. ">=2.0.0 <3.0.0".' }),
  };
}

export const ProductType = builder.prismaNode('Product', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  // Another tenant's id, or a deleted row, resolves to null rather than an internal error.
  nullable: true,
  authScopes: { member: true },
  fields: (t) => ({
    name: t.exposeString('name'),
    code: t.exposeString('code'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    editions: t.relation('editions', { query: { orderBy: { createdAt: 'asc' } } }),
    features: t.relation('features', { query: { orderBy: { code: 'asc' } } }),
    meters: t.relation('meters', { query: { orderBy: { code: 'asc' } } }),
  }),
});

builder.prismaNode('Feature', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  nullable: true,
  authScopes: { member: true },
  fields: (t) => ({
    code: t.exposeString('code'),
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
  }),
});

builder.prismaNode('Meter', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  nullable: true,
  authScopes: { member: true },
  fields: (t) => ({
    code: t.exposeString('code'),
    name: t.exposeString('name'),
    unit: t.exposeString('unit', { nullable: true }),
  }),
});

builder.prismaNode('Edition', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  nullable: true,
  authScopes: { member: true },
  fields: (t) => ({
    name: t.exposeString('name'),
    code: t.exposeString('code'),
    product: t.relation('product'),
    provisioning: t.expose('provisioning', { type: ProvisioningEnum }),
    clientType: t.expose('clientType', { type: ClientTypeEnum }),
    licenseType: t.expose('licenseType', { type: LicenseTypeEnum }),
    validityDays: t.exposeInt('validityDays', { nullable: true }),
    maxActivations: t.exposeInt('maxActivations', { nullable: true }),
    goodwillActivations: t.exposeInt('goodwillActivations'),
    seats: t.exposeInt('seats', { nullable: true }),
    leaseSeconds: t.exposeInt('leaseSeconds', { nullable: true }),
    heartbeatSeconds: t.exposeInt('heartbeatSeconds', { nullable: true }),
    inactivityReclaimSeconds: t.exposeInt('inactivityReclaimSeconds', { nullable: true }),
    gracePeriodSeconds: t.exposeInt('gracePeriodSeconds', { nullable: true }),
    deploymentMode: t.expose('deploymentMode', { type: DeploymentModeEnum }),
    allowOffline: t.exposeBoolean('allowOffline'),
    fingerprintMatch: t.expose('fingerprintMatch', { type: FingerprintMatchEnum }),
    features: t.exposeStringList('features'),
    meters: t.field({ type: [MeterEntitlement], select: { meters: true }, resolve: (e) => e.meters as unknown as MeterTerm[] }),
    entitlements: entitlementsField(t),
    allowedVersions: t.exposeString('allowedVersions', { nullable: true }),
    archivedAt: t.expose('archivedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the edition was retired: it issues no new licenses; those it issued keep working. Null = current.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    licenseCount: t.relationCount('licenses', {
      description: 'Licenses issued from the edition, in every status (an edition that issued any cannot be deleted; it can be archived).',
    }),
  }),
});

export const CustomerType = builder.prismaNode('Customer', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  nullable: true,
  authScopes: { member: true },
  fields: (t) => ({
    name: t.exposeString('name'),
    email: t.exposeString('email', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    licenseCount: t.relationCount('licenses', { description: 'Licenses issued to the customer, in every status (a customer holding any cannot be deleted).' }),
  }),
});

/** The customer list's order; its cursor holds these values. */
const CUSTOMER_ORDER: SortKey[] = [
  { field: 'name', kind: 'text', direction: 'asc' },
  { field: 'id', kind: 'uuid', direction: 'asc' },
];

builder.queryFields((t) => ({
  products: t.prismaField({
    type: ['Product'],
    authScopes: { role: 'READ_ONLY' },
    resolve: (query, _r, _a, ctx) => ctx.prisma.product.findMany({ ...query, where: tenantWhere(ctx.actor), orderBy: { name: 'asc' } }),
  }),
  customers: t.prismaConnection({
    type: 'Customer',
    cursor: 'tenantId_name_id',
    authScopes: { role: 'READ_ONLY' },
    args: { search: t.arg.string({ description: 'Part of the name or email, case-insensitive.' }) },
    resolve: (query, _r, { search }, ctx) => {
      const page = keysetPage(query, CUSTOMER_ORDER);
      return ctx.prisma.customer.findMany({
        ...page.query,
        where: {
          ...tenantWhere(ctx.actor),
          AND: [
            page.where,
            search
              ? {
                  OR: [
                    { name: { contains: likeLiteral(search.slice(0, 200)), mode: 'insensitive' } },
                    { email: { contains: likeLiteral(search.slice(0, 200)), mode: 'insensitive' } },
                  ],
                }
              : {},
          ],
        },
        orderBy: [{ name: 'asc' }, { id: 'asc' }],
      });
    },
  }),
}));

const CreateProductInput = builder.inputType('CreateProductInput', {
  fields: (t) => ({ name: t.string({ required: true }), code: t.string({ required: true }) }),
});
const CreateFeatureInput = builder.inputType('CreateFeatureInput', {
  fields: (t) => ({
    productId: t.id({ required: true }),
    code: t.string({ required: true }),
    name: t.string({ required: true }),
    description: t.string(),
  }),
});
const CreateMeterInput = builder.inputType('CreateMeterInput', {
  fields: (t) => ({
    productId: t.id({ required: true }),
    code: t.string({ required: true }),
    name: t.string({ required: true }),
    unit: t.string(),
  }),
});
const CreateEditionInput = builder.inputType('CreateEditionInput', {
  fields: (t) => ({
    productId: t.id({ required: true }),
    name: t.string({ required: true }),
    code: t.string({ required: true }),
    licenseType: t.field({ type: LicenseTypeEnum, required: true }),
    ...termInputFields(t),
  }),
});
const CreateCustomerInput = builder.inputType('CreateCustomerInput', {
  fields: (t) => ({ name: t.string({ required: true }), email: t.string() }),
});

/**
 * Term inputs from GraphQL: an explicit `null` list (features, meters, entitlements) means "not given", like an
 * absent one, so editions default it and licenses keep the edition's.
 */
export function withoutNullLists<T extends { features?: string[] | null; meters?: unknown[] | null; entitlements?: unknown[] | null }>(input: T) {
  return { ...input, features: input.features ?? undefined, meters: input.meters ?? undefined, entitlements: input.entitlements ?? undefined };
}

builder.mutationFields((t) => ({
  createProduct: t.prismaField({
    type: 'Product',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateProductInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const product = await createProduct(ctx, input);
      return ctx.prisma.product.findUniqueOrThrow({ ...query, where: { id: product.id } });
    },
  }),
  createFeature: t.prismaField({
    type: 'Feature',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateFeatureInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { productId, ...rest } = input;
      const feature = await createFeature(ctx, parseId(String(productId), 'Product', 'productId'), rest);
      return ctx.prisma.feature.findUniqueOrThrow({ ...query, where: { id: feature.id } });
    },
  }),
  createMeter: t.prismaField({
    type: 'Meter',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateMeterInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { productId, ...rest } = input;
      const meter = await createMeter(ctx, parseId(String(productId), 'Product', 'productId'), rest);
      return ctx.prisma.meter.findUniqueOrThrow({ ...query, where: { id: meter.id } });
    },
  }),
  createEdition: t.prismaField({
    type: 'Edition',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateEditionInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { productId, ...rest } = input;
      const edition = await createEdition(ctx, parseId(String(productId), 'Product', 'productId'), withoutNullLists(rest) as never);
      return ctx.prisma.edition.findUniqueOrThrow({ ...query, where: { id: edition.id } });
    },
  }),
  createCustomer: t.prismaField({
    type: 'Customer',
    authScopes: { role: 'SUPPORT' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateCustomerInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const customer = await createCustomer(ctx, input);
      return ctx.prisma.customer.findUniqueOrThrow({ ...query, where: { id: customer.id } });
    },
  }),
}));

const UpdateProductInput = builder.inputType('UpdateProductInput', {
  fields: (t) => ({
    productId: t.id({ required: true }),
    name: t.string(),
    code: t.string({ description: 'Must stay unique in the tenant.' }),
  }),
});
const UpdateFeatureInput = builder.inputType('UpdateFeatureInput', {
  fields: (t) => ({
    featureId: t.id({ required: true }),
    name: t.string(),
    description: t.string({ description: 'Null or empty clears it.' }),
  }),
});
const UpdateMeterInput = builder.inputType('UpdateMeterInput', {
  fields: (t) => ({
    meterId: t.id({ required: true }),
    name: t.string(),
    unit: t.string({ description: 'Null or empty clears it.' }),
  }),
});
const UpdateEditionInput = builder.inputType('UpdateEditionInput', {
  description: "Terms not given keep their value. Licenses already issued keep the terms they were issued with.",
  fields: (t) => ({
    editionId: t.id({ required: true }),
    name: t.string(),
    licenseType: t.field({ type: LicenseTypeEnum }),
    ...termInputFields(t),
  }),
});
const UpdateCustomerInput = builder.inputType('UpdateCustomerInput', {
  fields: (t) => ({
    customerId: t.id({ required: true }),
    name: t.string(),
    email: t.string({ description: 'Empty clears it.' }),
  }),
});
const DeleteCustomerInput = builder.inputType('DeleteCustomerInput', { fields: (t) => ({ customerId: t.id({ required: true }) }) });
const DeleteProductInput = builder.inputType('DeleteProductInput', { fields: (t) => ({ productId: t.id({ required: true }) }) });
const DeleteFeatureInput = builder.inputType('DeleteFeatureInput', { fields: (t) => ({ featureId: t.id({ required: true }) }) });
const DeleteMeterInput = builder.inputType('DeleteMeterInput', { fields: (t) => ({ meterId: t.id({ required: true }) }) });
const EditionIdInput = (name: string) => builder.inputType(name, { fields: (t) => ({ editionId: t.id({ required: true }) }) });
const DeleteEditionInput = EditionIdInput('DeleteEditionInput');
const ArchiveEditionInput = EditionIdInput('ArchiveEditionInput');
const UnarchiveEditionInput = EditionIdInput('UnarchiveEditionInput');

const DeletedPayload = (name: string, typename: string) =>
  builder.objectRef<{ id: string }>(name).implement({
    fields: (t) => ({ deletedId: t.id({ resolve: (p) => encodeGlobalID(typename, p.id) }) }),
  });
const DeleteProductPayload = DeletedPayload('DeleteProductPayload', 'Product');
const DeleteFeaturePayload = DeletedPayload('DeleteFeaturePayload', 'Feature');
const DeleteMeterPayload = DeletedPayload('DeleteMeterPayload', 'Meter');
const DeleteEditionPayload = DeletedPayload('DeleteEditionPayload', 'Edition');
const DeleteCustomerPayload = DeletedPayload('DeleteCustomerPayload', 'Customer');

const productId = (id: string | number) => parseId(String(id), 'Product', 'productId');
const featureId = (id: string | number) => parseId(String(id), 'Feature', 'featureId');
const meterId = (id: string | number) => parseId(String(id), 'Meter', 'meterId');
const editionId = (id: string | number) => parseId(String(id), 'Edition', 'editionId');
const customerId = (id: string | number) => parseId(String(id), 'Customer', 'customerId');

builder.mutationFields((t) => ({
  updateProduct: t.prismaField({
    type: 'Product',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: UpdateProductInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { productId: id, ...rest } = input;
      const product = await updateProduct(ctx, productId(id), rest);
      return ctx.prisma.product.findUniqueOrThrow({ ...query, where: { id: product.id } });
    },
  }),
  deleteProduct: t.field({
    type: DeleteProductPayload,
    description: 'Deletes a product with its editions, features and meters; refused while any license was issued for it.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: DeleteProductInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ id: (await deleteProduct(ctx, productId(input.productId))).id }),
  }),
  updateCustomer: t.prismaField({
    type: 'Customer',
    description: 'Renames a customer or changes its email; fields not given keep their value.',
    authScopes: { role: 'SUPPORT' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: UpdateCustomerInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { customerId: id, ...rest } = input;
      const customer = await updateCustomer(ctx, customerId(id), rest);
      return ctx.prisma.customer.findUniqueOrThrow({ ...query, where: { id: customer.id } });
    },
  }),
  deleteCustomer: t.field({
    type: DeleteCustomerPayload,
    description: 'Deletes a customer created by mistake; refused while any license was issued to it.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: DeleteCustomerInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ id: (await deleteCustomer(ctx, customerId(input.customerId))).id }),
  }),
  updateFeature: t.prismaField({
    type: 'Feature',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: UpdateFeatureInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { featureId: id, ...rest } = input;
      const feature = await updateFeature(ctx, featureId(id), rest);
      return ctx.prisma.feature.findUniqueOrThrow({ ...query, where: { id: feature.id } });
    },
  }),
  deleteFeature: t.field({
    type: DeleteFeaturePayload,
    description: "Refused while an edition's or a license's features or entitlements name it.",
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: DeleteFeatureInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ id: (await deleteFeature(ctx, featureId(input.featureId))).id }),
  }),
  updateMeter: t.prismaField({
    type: 'Meter',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: UpdateMeterInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { meterId: id, ...rest } = input;
      const meter = await updateMeter(ctx, meterId(id), rest);
      return ctx.prisma.meter.findUniqueOrThrow({ ...query, where: { id: meter.id } });
    },
  }),
  deleteMeter: t.field({
    type: DeleteMeterPayload,
    description: "Refused while an edition's or a license's meters name it, or usage of it is on record.",
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: DeleteMeterInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ id: (await deleteMeter(ctx, meterId(input.meterId))).id }),
  }),
  updateEdition: t.prismaField({
    type: 'Edition',
    description: 'Changes the terms licenses issued from now on start with; licenses already issued keep theirs.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: UpdateEditionInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const { editionId: id, ...rest } = input;
      const edition = await updateEdition(ctx, editionId(id), withoutNullLists(rest) as never);
      return ctx.prisma.edition.findUniqueOrThrow({ ...query, where: { id: edition.id } });
    },
  }),
  deleteEdition: t.field({
    type: DeleteEditionPayload,
    description: 'Refused once a license was issued from the edition; archive it instead.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: DeleteEditionInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ id: (await deleteEdition(ctx, editionId(input.editionId))).id }),
  }),
  archiveEdition: t.prismaField({
    type: 'Edition',
    description: 'Retires an edition: no new licenses are issued from it; those it issued keep working.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: ArchiveEditionInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const edition = await setEditionArchived(ctx, editionId(input.editionId), true);
      return ctx.prisma.edition.findUniqueOrThrow({ ...query, where: { id: edition.id } });
    },
  }),
  unarchiveEdition: t.prismaField({
    type: 'Edition',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: UnarchiveEditionInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const edition = await setEditionArchived(ctx, editionId(input.editionId), false);
      return ctx.prisma.edition.findUniqueOrThrow({ ...query, where: { id: edition.id } });
    },
  }),
}));
