import type { Prisma } from '@tessera/db/client';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../../errors.ts';
import { inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import { uniqueOr } from '../common/db.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { code, email, name, parse } from '../common/validate.ts';
import { assertTerms, type Catalogue, completeTerms, LICENSE_TYPES, partialTerms } from './terms.ts';

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

/** The features and meters a product defines: what terms may refer to. */
export async function catalogueOf(tx: Tx | ServiceContext['prisma'], productId: string): Promise<Catalogue> {
  const [features, meters] = await Promise.all([
    tx.feature.findMany({ where: { productId }, select: { code: true } }),
    tx.meter.findMany({ where: { productId }, select: { code: true } }),
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
      tx.edition.create({
        data: { tenantId, productId, name: editionName, code: editionCode, ...terms, meters: terms.meters as Prisma.InputJsonValue, entitlements: terms.entitlements as Prisma.InputJsonValue },
      }),
    );
    emit({ type: 'edition.created', subjectType: 'Edition', subjectId: edition.id, payload: { productId, code: edition.code, terms } });
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
