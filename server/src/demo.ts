import { randomBytes, randomUUID } from 'node:crypto';
import type { AppDeps } from './context.ts';
import type { ServiceContext } from './modules/audit/service.ts';
import { createCustomer, createEdition, createFeature, createMeter, createProduct } from './modules/catalog/service.ts';
import { createLicense } from './modules/licenses/service.ts';
import { createMember, createTenant } from './modules/tenants/service.ts';

export interface DemoCredentials {
  tenant: string;
  email: string;
  password: string;
  apiToken: string;
}

/** The `demo` tenant a first start creates: a product with editions, customers and licenses to look at. */
export async function seedDemo(app: AppDeps): Promise<DemoCredentials> {
  const base: ServiceContext = { app, prisma: app.prisma, actor: { kind: 'anonymous' }, requestId: `seed-${randomUUID()}` };
  const { tenant, adminToken } = await createTenant(base, { slug: 'demo', name: 'Demo Software Inc.' });
  const ctx: ServiceContext = { ...base, actor: { kind: 'operator', tenantId: tenant.id } };
  const password = randomBytes(9).toString('base64url');
  const email = 'admin@demo.local';
  await createMember(ctx, { email, name: 'Demo Admin', password, role: 'OWNER' });

  const cad = await createProduct(ctx, { name: 'Acme CAD', code: 'acme-cad' });
  for (const [code, name] of [
    ['export-pdf', 'Export to PDF'],
    ['render-3d', '3D rendering'],
    ['cloud-sync', 'Cloud sync'],
    ['scripting', 'Scripting API'],
  ] as const) {
    await createFeature(ctx, cad.id, { code, name });
  }
  await createMeter(ctx, cad.id, { code: 'render-minutes', name: 'Render minutes', unit: 'min' });
  await createMeter(ctx, cad.id, { code: 'exports', name: 'Exports' });

  const standard = await createEdition(ctx, cad.id, {
    name: 'Standard', code: 'standard', licenseType: 'SUBSCRIPTION', validityDays: 365,
    maxActivations: 3, goodwillActivations: 1, heartbeatSeconds: 3600, inactivityReclaimSeconds: 14 * 86400,
    features: ['export-pdf'], meters: [{ meter: 'exports', quota: 500, period: 'MONTH' }],
  });
  const pro = await createEdition(ctx, cad.id, {
    name: 'Professional', code: 'pro', licenseType: 'SUBSCRIPTION', validityDays: 365,
    maxActivations: 5, goodwillActivations: 1, heartbeatSeconds: 3600, fingerprintMatch: 'MAJORITY',
    features: ['export-pdf', 'render-3d', 'cloud-sync', 'scripting'],
    meters: [{ meter: 'render-minutes', quota: 1000, period: 'MONTH' }, { meter: 'exports', quota: 5000, period: 'MONTH' }],
    allowedVersions: '>=2.0.0 <4.0.0',
  });
  const trial = await createEdition(ctx, cad.id, {
    name: 'Trial', code: 'trial', licenseType: 'TRIAL', validityDays: 14, maxActivations: 1, heartbeatSeconds: 900,
    features: ['export-pdf', 'render-3d'],
  });
  const floating = await createEdition(ctx, cad.id, {
    name: 'Team (floating)', code: 'team-floating', licenseType: 'FLOATING', provisioning: 'FLOATING',
    clientType: 'USERS', seats: 10, leaseSeconds: 900, features: ['export-pdf', 'render-3d'],
  });
  const airgap = await createEdition(ctx, cad.id, {
    name: 'Air-gapped site', code: 'airgap', licenseType: 'PERPETUAL', maxActivations: 2,
    deploymentMode: 'OFFLINE', features: ['export-pdf', 'render-3d', 'scripting'],
  });

  const globex = await createCustomer(ctx, { name: 'Globex Corporation', email: 'it@globex.example' });
  const initech = await createCustomer(ctx, { name: 'Initech', email: 'licensing@initech.example' });
  const umbrella = await createCustomer(ctx, { name: 'Umbrella Labs', email: 'ops@umbrella.example' });
  await createLicense(ctx, { editionId: pro.id, customerId: globex.id, name: 'Globex engineering' });
  await createLicense(ctx, { editionId: standard.id, customerId: initech.id, tokenCount: 3 });
  await createLicense(ctx, { editionId: trial.id, customerId: initech.id, name: 'Initech evaluation' });
  await createLicense(ctx, { editionId: floating.id, customerId: umbrella.id, seats: 25 });
  await createLicense(ctx, { editionId: airgap.id, customerId: umbrella.id, name: 'Umbrella plant 4' });
  return { tenant: tenant.slug, email, password, apiToken: adminToken };
}
