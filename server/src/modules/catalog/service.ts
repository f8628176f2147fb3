import { Prisma } from '@tessera/db/client';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import { diff, inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import { referencedOr, uniqueOr } from '../common/db.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { code, email, name, parse } from '../common/validate.ts';
import {
  assertTerms,
  type Catalogue,
  completeTerms,
  editionTerms,
  LICENSE_TYPES,
  partialTerms,
  stripUndefined,
  type Terms,
} from './terms.ts';

export async function createProduct(ctx: ServiceContext, input: { name: string; code: string }) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(z.object({ name, code }), input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const product = await uniqueOr(`a product with code "${data.code}" already exists`, () =>
      tx.product.create({ data: { tenantId, name: data.name, code: data.code } }),
    );
    emit({ type: 'product.created', subjectType: 'Product', subjectId: product.id, payload: { code: product.code, name: product.name } });
    return product;
  });
}

async function productOf(tx: Tx | ServiceContext['prisma'], tenantId: string, productId: string) {
  const product = await tx.product.findFirst({ where: { id: productId, tenantId } });
  if (!product) throw new NotFoundError('product');
  return product;
}

const featureInput = z.object({ name, code, description: z.string().max(2000, 'must be at most 2000 characters').nullish() });

export async function createFeature(ctx: ServiceContext, productId: string, input: z.input<typeof featureInput>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(featureInput, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await productOf(tx, tenantId, productId);
    const feature = await uniqueOr(`the product already has a feature "${data.code}"`, () =>
      tx.feature.create({ data: { tenantId, productId, code: data.code, name: data.name, description: data.description ?? null } }),
    );
    emit({ type: 'feature.created', subjectType: 'Feature', subjectId: feature.id, payload: { productId, code: feature.code } });
    return feature;
  });
}

const meterInput = z.object({ name, code, unit: z.string().trim().max(32, 'must be at most 32 characters').nullish() });

export async function createMeter(ctx: ServiceContext, productId: string, input: z.input<typeof meterInput>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(meterInput, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await productOf(tx, tenantId, productId);
    const meter = await uniqueOr(`the product already has a meter "${data.code}"`, () =>
      tx.meter.create({ data: { tenantId, productId, code: data.code, name: data.name, unit: data.unit ?? null } }),
    );
    emit({ type: 'meter.created', subjectType: 'Meter', subjectId: meter.id, payload: { productId, code: meter.code } });
    return meter;
  });
}

/**
 * The features and meters a product defines: what terms may refer to. FOR SHARE, so a feature or
 * meter deleted meanwhile either waits for this transaction (and then sees the terms it wrote) or,
 * deleted first, is not listed here.
 */
export async function catalogueOf(tx: Tx, productId: string): Promise<Catalogue> {
  const [features, meters] = await Promise.all([
    tx.$queryRaw<{ code: string }[]>`SELECT code FROM "Feature" WHERE "productId" = ${productId}::uuid FOR SHARE`,
    tx.$queryRaw<{ code: string }[]>`SELECT code FROM "Meter" WHERE "productId" = ${productId}::uuid FOR SHARE`,
  ]);
  return { features: new Set(features.map((f) => f.code)), meters: new Set(meters.map((m) => m.code)) };
}

export const editionInput = partialTerms.extend({
  name,
  code,
  licenseType: z.enum(LICENSE_TYPES),
});

export async function createEdition(ctx: ServiceContext, productId: string, input: z.input<typeof editionInput>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const { name: editionName, code: editionCode, ...given } = parse(editionInput, input);
  const terms = completeTerms(given);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await productOf(tx, tenantId, productId);
    if (terms.licenseType === 'TRIAL' && terms.validityDays === null) {
      throw ValidationError.field('validityDays', 'a TRIAL edition needs a validity in days');
    }
    assertTerms(terms, await catalogueOf(tx, productId));
    const edition = await uniqueOr(`the product already has an edition "${editionCode}"`, () =>
      tx.edition.create({ data: { tenantId, productId, name: editionName, code: editionCode, ...editionData(terms) } }),
    );
    emit({ type: 'edition.created', subjectType: 'Edition', subjectId: edition.id, payload: { productId, code: edition.code, terms } });
    return edition;
  });
}

// ---------------------------------------------------------------------------------------------
// Changing and removing the catalogue. Rows are locked first, so concurrent changes apply in turn
// and each audit diff is against what it replaced.

type CatalogTable = 'Product' | 'Feature' | 'Meter' | 'Edition' | 'Customer';

async function lockRow(tx: Tx, table: CatalogTable, tenantId: string, id: string): Promise<void> {
  const rows = await tx.$queryRaw<{ id: string }[]>(
    Prisma.sql`SELECT id FROM ${Prisma.raw(`"${table}"`)} WHERE id = ${id}::uuid AND "tenantId" = ${tenantId}::uuid FOR UPDATE`,
  );
  if (rows.length === 0) throw new NotFoundError(table.toLowerCase());
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "2 editions (pro, basic)", listing at most a few codes. */
function editionsPhrase(codes: string[]) {
  const shown = codes.slice(0, 5).join(', ');
  return `${plural(codes.length, 'edition')} (${shown}${codes.length > 5 ? ', …' : ''})`;
}

/** "a, b and c" */
function sentence(parts: string[]) {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}

/** null keeps the stored value: only `undefined`-or-value fields reach the update. */
const keep = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

const productUpdate = z.object({ name: name.nullish(), code: code.nullish() });

export async function updateProduct(ctx: ServiceContext, productId: string, input: z.input<typeof productUpdate>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(productUpdate, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Product', tenantId, productId);
    const before = await tx.product.findUniqueOrThrow({ where: { id: productId } });
    const after = stripUndefined({ name: keep(data.name), code: keep(data.code) });
    const changes = diff(before, after);
    if (Object.keys(changes).length === 0) return before;
    const product = await uniqueOr(`a product with code "${after.code}" already exists`, () => tx.product.update({ where: { id: productId }, data: after }));
    emit({ type: 'product.updated', subjectType: 'Product', subjectId: productId, payload: { code: product.code, changes } });
    return product;
  });
}

/**
 * Deletes a product with its editions, features and meters, never its licenses: a product that has
 * issued any is refused (the licenses' foreign key holds that against a license written meanwhile).
 */
export async function deleteProduct(ctx: ServiceContext, productId: string) {
  const { tenantId } = tenantWhere(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Product', tenantId, productId);
    const product = await tx.product.findUniqueOrThrow({
      where: { id: productId },
      include: {
        editions: { select: { code: true }, orderBy: { code: 'asc' } },
        features: { select: { code: true }, orderBy: { code: 'asc' } },
        meters: { select: { code: true }, orderBy: { code: 'asc' } },
      },
    });
    const licenses = await tx.license.count({ where: { productId } });
    const refusal = (n: string) => `${n} issued for this product; it cannot be deleted (archive its editions to stop new licenses)`;
    if (licenses > 0) throw new ConflictError(refusal(plural(licenses, 'license was', 'licenses were')));
    await referencedOr(refusal('licenses were'), () => tx.product.delete({ where: { id: productId } }));
    emit({
      type: 'product.deleted',
      subjectType: 'Product',
      subjectId: productId,
      payload: {
        code: product.code,
        name: product.name,
        editions: product.editions.map((e) => e.code),
        features: product.features.map((f) => f.code),
        meters: product.meters.map((m) => m.code),
      },
    });
    return product;
  });
}

const featureUpdate = z.object({ name: name.nullish(), description: featureInput.shape.description });

export async function updateFeature(ctx: ServiceContext, featureId: string, input: z.input<typeof featureUpdate>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(featureUpdate, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Feature', tenantId, featureId);
    const before = await tx.feature.findUniqueOrThrow({ where: { id: featureId } });
    // An empty description clears it, as null does.
    const after = stripUndefined({ name: keep(data.name), description: data.description === undefined ? undefined : data.description || null });
    const changes = diff(before, after);
    if (Object.keys(changes).length === 0) return before;
    const feature = await tx.feature.update({ where: { id: featureId }, data: after });
    emit({ type: 'feature.updated', subjectType: 'Feature', subjectId: featureId, payload: { productId: feature.productId, code: feature.code, changes } });
    return feature;
  });
}

/** What still names a feature or meter of a product: editions (by code) and licenses (counted). */
async function usersOf(tx: Tx, productId: string, kind: 'feature' | 'meter', code: string) {
  const named =
    kind === 'feature'
      ? Prisma.sql`(${code}::text = ANY(features) OR entitlements @> jsonb_build_array(jsonb_build_object('feature', ${code}::text)))`
      : Prisma.sql`meters @> jsonb_build_array(jsonb_build_object('meter', ${code}::text))`;
  const [row] = await tx.$queryRaw<{ editions: string[]; licenses: number }[]>(Prisma.sql`
    SELECT
      (SELECT coalesce(array_agg(code ORDER BY code), '{}') FROM "Edition" WHERE "productId" = ${productId}::uuid AND ${named}) AS editions,
      (SELECT count(*)::int FROM "License" WHERE "productId" = ${productId}::uuid AND ${named}) AS licenses`);
  return row!;
}

function inUse(what: string, users: { editions: string[]; licenses: number }, usage = 0): ConflictError | null {
  const parts: string[] = [];
  if (users.editions.length) parts.push(editionsPhrase(users.editions));
  if (users.licenses) parts.push(plural(users.licenses, 'license'));
  if (usage) parts.push(`${plural(usage, 'recorded usage entry', 'recorded usage entries')}`);
  if (parts.length === 0) return null;
  const named = users.editions.length || users.licenses ? ' (take it out of their terms first)' : '';
  return new ConflictError(`${what} is still used by ${sentence(parts)}${named}; it cannot be deleted`);
}

export async function deleteFeature(ctx: ServiceContext, featureId: string) {
  const { tenantId } = tenantWhere(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Feature', tenantId, featureId);
    const feature = await tx.feature.findUniqueOrThrow({ where: { id: featureId } });
    const refusal = inUse(`feature "${feature.code}"`, await usersOf(tx, feature.productId, 'feature', feature.code));
    if (refusal) throw refusal;
    await tx.feature.delete({ where: { id: featureId } });
    emit({ type: 'feature.deleted', subjectType: 'Feature', subjectId: featureId, payload: { productId: feature.productId, code: feature.code } });
    return feature;
  });
}

const meterUpdate = z.object({ name: name.nullish(), unit: meterInput.shape.unit });

export async function updateMeter(ctx: ServiceContext, meterId: string, input: z.input<typeof meterUpdate>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(meterUpdate, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Meter', tenantId, meterId);
    const before = await tx.meter.findUniqueOrThrow({ where: { id: meterId } });
    const after = stripUndefined({ name: keep(data.name), unit: data.unit === undefined ? undefined : data.unit || null });
    const changes = diff(before, after);
    if (Object.keys(changes).length === 0) return before;
    const meter = await tx.meter.update({ where: { id: meterId }, data: after });
    emit({ type: 'meter.updated', subjectType: 'Meter', subjectId: meterId, payload: { productId: meter.productId, code: meter.code, changes } });
    return meter;
  });
}

export async function deleteMeter(ctx: ServiceContext, meterId: string) {
  const { tenantId } = tenantWhere(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Meter', tenantId, meterId);
    const meter = await tx.meter.findUniqueOrThrow({ where: { id: meterId } });
    // The ledger outlives the terms: a license whose quota for the meter was removed still has its usage on record.
    const [ledger] = await tx.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM "UsageLedgerEntry" u JOIN "License" l ON l.id = u."licenseId"
       WHERE l."productId" = ${meter.productId}::uuid AND u.meter = ${meter.code}`;
    const refusal = inUse(`meter "${meter.code}"`, await usersOf(tx, meter.productId, 'meter', meter.code), ledger!.n);
    if (refusal) throw refusal;
    await tx.meter.delete({ where: { id: meterId } });
    emit({ type: 'meter.deleted', subjectType: 'Meter', subjectId: meterId, payload: { productId: meter.productId, code: meter.code } });
    return meter;
  });
}

export const editionUpdate = partialTerms.extend({ name: name.nullish() });

/**
 * Merges the given terms over the edition's and checks the result by createEdition's rules. Licenses
 * copied the terms when they were issued, so only licenses issued afterwards get the new ones.
 */
export async function updateEdition(ctx: ServiceContext, editionId: string, input: z.input<typeof editionUpdate>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const { name: newName, ...given } = parse(editionUpdate, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Edition', tenantId, editionId);
    const before = await tx.edition.findUniqueOrThrow({ where: { id: editionId } });
    const base = editionTerms(before);
    const terms = completeTerms({ licenseType: base.licenseType, ...stripUndefined(given) }, base);
    if (terms.licenseType === 'TRIAL' && terms.validityDays === null) {
      throw ValidationError.field('validityDays', 'a TRIAL edition needs a validity in days');
    }
    assertTerms(terms, await catalogueOf(tx, before.productId));
    const changes = diff({ name: before.name, ...base }, { name: keep(newName) ?? before.name, ...terms });
    if (Object.keys(changes).length === 0) return before;
    const edition = await tx.edition.update({ where: { id: editionId }, data: { name: keep(newName), ...editionData(terms) } });
    emit({ type: 'edition.updated', subjectType: 'Edition', subjectId: editionId, payload: { productId: edition.productId, code: edition.code, changes } });
    return edition;
  });
}

function editionData(terms: Terms) {
  return { ...terms, meters: terms.meters as Prisma.InputJsonValue, entitlements: terms.entitlements as Prisma.InputJsonValue };
}

/** Deletes an edition no license was issued from; one that issued licenses can be archived instead. */
export async function deleteEdition(ctx: ServiceContext, editionId: string) {
  const { tenantId } = tenantWhere(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Edition', tenantId, editionId);
    const edition = await tx.edition.findUniqueOrThrow({ where: { id: editionId } });
    const licenses = await tx.license.count({ where: { editionId } });
    const refusal = (n: string) => `${n} issued from this edition; archive it instead to stop new licenses`;
    if (licenses > 0) throw new ConflictError(refusal(plural(licenses, 'license was', 'licenses were')));
    await referencedOr(refusal('licenses were'), () => tx.edition.delete({ where: { id: editionId } }));
    emit({ type: 'edition.deleted', subjectType: 'Edition', subjectId: editionId, payload: { productId: edition.productId, code: edition.code, terms: editionTerms(edition) } });
    return edition;
  });
}

/** Archived editions issue no new licenses; the licenses they issued are not touched. Repeating it changes nothing. */
export async function setEditionArchived(ctx: ServiceContext, editionId: string, archived: boolean) {
  const { tenantId } = tenantWhere(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Edition', tenantId, editionId);
    const before = await tx.edition.findUniqueOrThrow({ where: { id: editionId } });
    if ((before.archivedAt !== null) === archived) return before;
    const edition = await tx.edition.update({ where: { id: editionId }, data: { archivedAt: archived ? new Date() : null } });
    emit({
      type: archived ? 'edition.archived' : 'edition.unarchived',
      subjectType: 'Edition',
      subjectId: editionId,
      payload: { productId: edition.productId, code: edition.code },
    });
    return edition;
  });
}

const customerInput = z.object({ name, email: email.nullish() });

export async function createCustomer(ctx: ServiceContext, input: z.input<typeof customerInput>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(customerInput, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const customer = await tx.customer.create({ data: { tenantId, name: data.name, email: data.email ?? null } });
    emit({ type: 'customer.created', subjectType: 'Customer', subjectId: customer.id, customerId: customer.id, payload: { name: customer.name } });
    return customer;
  });
}

/** An email, or empty to clear it. */
const clearableEmail = z
  .string()
  .trim()
  .refine((v) => v === '' || email.safeParse(v).success, 'is not an email address')
  .transform((v) => (v === '' ? '' : email.parse(v)));
const customerUpdate = z.object({ name: name.nullish(), email: clearableEmail.nullish() });

/** Renames a customer or changes its email (empty clears it); its licenses keep pointing at it. */
export async function updateCustomer(ctx: ServiceContext, customerId: string, input: z.input<typeof customerUpdate>) {
  const { tenantId } = tenantWhere(ctx.actor);
  const data = parse(customerUpdate, input);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Customer', tenantId, customerId);
    const before = await tx.customer.findUniqueOrThrow({ where: { id: customerId } });
    const after = stripUndefined({ name: keep(data.name), email: data.email === '' ? null : keep(data.email) });
    const changes = diff(before, after);
    if (Object.keys(changes).length === 0) return before;
    const customer = await tx.customer.update({ where: { id: customerId }, data: after });
    emit({ type: 'customer.updated', subjectType: 'Customer', subjectId: customerId, customerId, payload: { name: customer.name, changes } });
    return customer;
  });
}

/**
 * Deletes a customer that holds no license, e.g. one created by mistake. One that holds any is refused
 * (the licenses' foreign key holds that against a license written meanwhile): its licenses, their
 * devices and usage stay attributed to it.
 */
export async function deleteCustomer(ctx: ServiceContext, customerId: string) {
  const { tenantId } = tenantWhere(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    await lockRow(tx, 'Customer', tenantId, customerId);
    const customer = await tx.customer.findUniqueOrThrow({ where: { id: customerId } });
    const licenses = await tx.license.count({ where: { customerId } });
    const refusal = (n: string) => `${n} issued to this customer; it cannot be deleted`;
    if (licenses > 0) throw new ConflictError(refusal(plural(licenses, 'license was', 'licenses were')));
    await referencedOr(refusal('licenses were'), () => tx.customer.delete({ where: { id: customerId } }));
    emit({ type: 'customer.deleted', subjectType: 'Customer', subjectId: customerId, customerId, payload: { name: customer.name, email: customer.email } });
    return customer;
  });
}
