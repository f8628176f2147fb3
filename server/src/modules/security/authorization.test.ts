import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  buildSchema,
  getNamedType,
  type GraphQLField,
  type GraphQLInputType,
  isEnumType,
  isInputObjectType,
  isLeafType,
  isListType,
  isNonNullType,
  isScalarType,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { issue } from '../activation/fixtures.ts';

/**
 * Every admin query and mutation of the printed schema x every role x own/other tenant.
 * The minimum role of each field, as its authScopes in the code say (`member` = any role).
 * A field that appears in the schema without an entry here (or in PUBLIC) fails the test.
 */
type Role = 'READ_ONLY' | 'SUPPORT' | 'ADMIN' | 'OWNER';
const MINIMUM_ROLE: Record<string, Role> = {
  // queries
  'Query.apiTokens': 'ADMIN',
  'Query.auditEvents': 'SUPPORT',
  'Query.complianceSettings': 'READ_ONLY',
  'Query.complianceSummary': 'READ_ONLY',
  'Query.customers': 'READ_ONLY',
  'Query.deviceInsights': 'READ_ONLY',
  'Query.licenseByKey': 'READ_ONLY',
  'Query.licenses': 'READ_ONLY',
  'Query.members': 'ADMIN',
  'Query.products': 'READ_ONLY',
  'Query.seatMap': 'READ_ONLY',
  'Query.signingKeys': 'READ_ONLY',
  'Query.tenant': 'READ_ONLY',
  'Query.usageReconciliation': 'READ_ONLY',
  'Query.verifyAuditChain': 'ADMIN',
  'Query.webhookEndpoint': 'READ_ONLY',
  'Query.webhookEndpoints': 'READ_ONLY',
  'Query.webhookEventTypes': 'READ_ONLY',
  // mutations
  'Mutation.createApiToken': 'ADMIN',
  'Mutation.createCustomer': 'SUPPORT',
  'Mutation.createEdition': 'ADMIN',
  'Mutation.createFeature': 'ADMIN',
  'Mutation.createLicense': 'ADMIN',
  'Mutation.createMember': 'OWNER',
  'Mutation.createMeter': 'ADMIN',
  'Mutation.createProduct': 'ADMIN',
  'Mutation.importLicenses': 'ADMIN',
  'Mutation.importOfflineDeactivation': 'SUPPORT',
  'Mutation.issueOfflineLicense': 'SUPPORT',
  'Mutation.refreshOfflineLicense': 'SUPPORT',
  'Mutation.reinstateLicense': 'SUPPORT',
  'Mutation.releaseActivation': 'SUPPORT',
  'Mutation.renewLicense': 'ADMIN',
  'Mutation.revokeApiToken': 'ADMIN',
  'Mutation.revokeLicense': 'ADMIN',
  'Mutation.rotateSigningKey': 'OWNER',
  'Mutation.setComplianceSettings': 'ADMIN',
  'Mutation.setComplianceThresholds': 'ADMIN',
  'Mutation.suspendLicense': 'SUPPORT',
  'Mutation.updateLicense': 'ADMIN',
  'Mutation.createWebhookEndpoint': 'ADMIN',
  'Mutation.updateWebhookEndpoint': 'ADMIN',
  'Mutation.rotateWebhookSecret': 'ADMIN',
  'Mutation.deleteWebhookEndpoint': 'ADMIN',
  'Mutation.sendTestWebhook': 'ADMIN',
  'Mutation.replayWebhookDelivery': 'ADMIN',
  'Mutation.updateProduct': 'ADMIN',
  'Mutation.deleteProduct': 'ADMIN',
  'Mutation.updateFeature': 'ADMIN',
  'Mutation.deleteFeature': 'ADMIN',
  'Mutation.updateMeter': 'ADMIN',
  'Mutation.deleteMeter': 'ADMIN',
  'Mutation.updateEdition': 'ADMIN',
  'Mutation.deleteEdition': 'ADMIN',
  'Mutation.archiveEdition': 'ADMIN',
  'Mutation.unarchiveEdition': 'ADMIN',
};

/** Fields any caller may use: client (license-key) operations, sign-in, and the per-object checked node lookups. */
const PUBLIC = new Set([
  'Query.validateLicense',
  'Query.seatQueuePosition',
  'Query.viewer',
  'Query.node',
  'Query.nodes',
  'Mutation.activate',
  'Mutation.heartbeat',
  'Mutation.deactivate',
  'Mutation.checkoutSeat',
  'Mutation.heartbeatSeat',
  'Mutation.releaseSeat',
  'Mutation.borrowSeat',
  'Mutation.authorizeUsage',
  'Mutation.commitUsage',
  'Mutation.recordUsage',
  'Mutation.releaseUsage',
  'Mutation.noop',
  'Mutation.signIn',
  'Mutation.signOut',
]);

const ROLES: Role[] = ['READ_ONLY', 'SUPPORT', 'ADMIN', 'OWNER'];
const RANK: Record<Role, number> = { READ_ONLY: 0, SUPPORT: 1, ADMIN: 2, OWNER: 3 };

const printed = buildSchema(readFileSync(path.resolve(import.meta.dirname, '../../../../schema/schema.graphql'), 'utf8'));
const rootFields = [printed.getQueryType()!, printed.getMutationType()!].flatMap((t) =>
  Object.values(t.getFields()).map((f) => ({ coordinate: `${t.name}.${f.name}`, operation: t.name === 'Query' ? 'query' : 'mutation', field: f })),
);

/** Minimal valid values for a type; ID fields named after an object get the other tenant's id. */
function valueFor(type: GraphQLInputType, name: string, ids: Record<string, string>): unknown {
  if (isNonNullType(type)) return valueFor(type.ofType, name, ids);
  if (isListType(type)) {
    const inner = valueFor(type.ofType, name, ids);
    return name === 'ids' ? Object.values(ids) : inner === undefined ? [] : [inner];
  }
  if (isInputObjectType(type)) {
    const out: Record<string, unknown> = {};
    for (const f of Object.values(type.getFields())) {
      const idField = getNamedType(f.type).name === 'ID' && ids[f.name] !== undefined;
      if (isNonNullType(f.type) || idField) out[f.name] = valueFor(f.type, f.name, ids);
    }
    return out;
  }
  if (isEnumType(type)) return type.getValues()[0]!.value;
  if (isScalarType(type)) {
    switch (type.name) {
      case 'ID':
        return ids[name] ?? ids.id;
      case 'Int':
        return name === 'percents' ? 80 : 1;
      case 'Float':
        return 1;
      case 'Boolean':
        return false;
      case 'DateTime':
        return new Date(Date.now() + 86_400_000).toISOString();
      case 'JSON':
        return {};
      default:
        return name === 'key' ? ids.licenseKey : `x-${randomUUID().slice(0, 8)}`;
    }
  }
  return undefined;
}

function operationFor(operation: string, field: GraphQLField<unknown, unknown>, ids: Record<string, string>) {
  const required = field.args.filter((a) => isNonNullType(a.type) || (getNamedType(a.type).name === 'ID' && ids[a.name] !== undefined));
  const vars = required.map((a) => `$${a.name}: ${a.type.toString()}`).join(', ');
  const args = required.map((a) => `${a.name}: $${a.name}`).join(', ');
  const selection = isLeafType(getNamedType(field.type)) ? '' : ' { __typename }';
  const query = `${operation}${vars ? `(${vars})` : ''} { ${field.name}${args ? `(${args})` : ''}${selection} }`;
  const variables = Object.fromEntries(required.map((a) => [a.name, valueFor(a.type, a.name, ids)]));
  return { query, variables };
}

describe('authorization matrix', () => {
  let s: TestServer;
  const tokens = {} as Record<Role, string>;
  let other: { token: string; ids: Record<string, string>; secrets: string[]; tenantId: string; licenseId: string };

  beforeAll(async () => {
    s = await startTestServer();
    const own = await s.tenant();
    for (const role of ROLES) {
      const r = ok(
        await s.gql(`mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { ... on CreateApiTokenPayload { token } } }`, { input: { name: role, role } }, { token: own.token }),
      );
      tokens[role] = r.createApiToken.token;
    }
    // The other tenant, with one of everything.
    const b = await s.tenant();
    const lic = await issue(s, b.token, { maxActivations: 5 });
    const act = ok(
      await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { ... on ActivateSuccess { activation { id } } } }`, { input: { key: lic.key, fingerprint: 'b-device' } }),
    );
    const customer = ok(await s.gql(`mutation { createCustomer(input: { name: "Other Tenant Customer" }) { ... on Customer { id } } }`, {}, { token: b.token }));
    const member = ok(
      await s.gql(`mutation($input: CreateMemberInput!) { createMember(input: $input) { ... on Member { id } } }`, { input: { email: 'other@tenant.test', password: 'correct horse battery', role: 'ADMIN' } }, { token: b.token }),
    );
    const apiToken = ok(
      await s.gql(`mutation { createApiToken(input: { name: "Other token", role: ADMIN }) { ... on CreateApiTokenPayload { apiToken { id } } } }`, {}, { token: b.token }),
    );
    const ids = {
      licenseId: lic.globalId,
      productId: lic.productId,
      editionId: lic.editionId,
      customerId: customer.createCustomer.id,
      activationId: act.activate.activation.id,
      memberId: member.createMember.id,
      id: apiToken.createApiToken.apiToken.id,
      licenseKey: lic.key,
    };
    other = { token: b.token, ids, tenantId: b.id, licenseId: lic.id, secrets: [...Object.values(ids), lic.id, 'Other Tenant Customer', 'other@tenant.test', b.slug] };
  });
  afterAll(() => s.close());

  it('has an entry for every admin field of the printed schema', () => {
    const unknown = rootFields.map((f) => f.coordinate).filter((c) => !(c in MINIMUM_ROLE) && !PUBLIC.has(c));
    expect(unknown, 'add the new fields to MINIMUM_ROLE (or PUBLIC) in authorization.test.ts').toEqual([]);
    const stale = Object.keys(MINIMUM_ROLE).filter((c) => !rootFields.some((f) => f.coordinate === c));
    expect(stale).toEqual([]);
  });

  const admin = rootFields.filter((f) => f.coordinate in MINIMUM_ROLE);

  it('refuses anonymous callers with UNAUTHENTICATED', async () => {
    for (const { coordinate, operation, field } of admin) {
      const { query, variables } = operationFor(operation, field, other.ids);
      const r = await s.gql(query, variables);
      expect(r.errors?.[0]?.extensions?.code, `${coordinate}: ${JSON.stringify(r.errors)}`).toBe('UNAUTHENTICATED');
      for (const secret of other.secrets) expect(JSON.stringify(r.data), coordinate).not.toContain(secret);
    }
  });

  for (const role of ROLES) {
    it(`${role}: FORBIDDEN below the minimum role; never the other tenant's data`, async () => {
      for (const { coordinate, operation, field } of admin) {
        const { query, variables } = operationFor(operation, field, other.ids);
        const r = await s.gql(query, variables, { token: tokens[role] });
        const label = `${role} ${coordinate}: ${JSON.stringify(r.errors ?? r.data)}`;
        const body = JSON.stringify({ data: r.data, errors: r.errors });
        for (const secret of other.secrets) expect(body, label).not.toContain(secret);
        if (RANK[role] < RANK[MINIMUM_ROLE[coordinate]!]) {
          expect(r.errors?.[0]?.extensions?.code, label).toBe('FORBIDDEN');
          continue;
        }
        const code = r.errors?.[0]?.extensions?.code;
        expect(['UNAUTHENTICATED', 'FORBIDDEN'], label).not.toContain(code);
        // Given the other tenant's ids, an allowed caller gets "not found" (or a refused input), never the object.
        const usesIds = Object.keys(variables).length > 0 && JSON.stringify(variables).match(/"(licenseId|productId|editionId|customerId|activationId|id)"/);
        const result = r.data?.[field.name];
        if (usesIds && result) {
          const typename = Array.isArray(result) ? null : (result as { __typename?: string }).__typename;
          expect(['NotFoundError', 'ValidationError', 'ConflictError', 'LicensingError', 'ComplianceSummary', 'UsageReconciliation', 'QueryLicensesConnection', 'QueryAuditEventsConnection', 'SeatMapResult', null, undefined], label).toContain(typename);
          if (typename === 'QueryLicensesConnection') {
            // A list or summary filtered by another tenant's id must come back empty.
            const detail = await s.gql(query.replace('{ __typename }', '{ __typename ... on QueryLicensesConnection { totalCount } }'), variables, { token: tokens[role] });
            expect(JSON.stringify(detail.data), label).not.toMatch(/"totalCount":[1-9]/);
          }
        }
      }
    });
  }

  it('node lookups of the other tenant ids resolve to null', async () => {
    const ids = Object.entries(other.ids).filter(([k]) => k !== 'licenseKey').map(([, v]) => v);
    for (const role of ROLES) {
      for (const id of ids) {
        const one = await s.gql(`query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }`, { ids: [id] }, { token: tokens[role] });
        expect(one.data?.nodes, `${role} ${id} ${Buffer.from(id, 'base64').toString()}: ${JSON.stringify(one.errors)}`).toEqual([null]);
      }
      const r = await s.gql(`query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }`, { ids }, { token: tokens[role] });
      expect(r.data?.nodes, `${role}: ${JSON.stringify(r.errors)}`).toEqual(ids.map(() => null));
      for (const id of ids) {
        const one = await s.gql(`query($id: ID!) { node(id: $id) { __typename id } }`, { id }, { token: tokens[role] });
        expect(one.data?.node ?? null, `${role} ${id}`).toBeNull();
      }
    }
    const anonymous = await s.gql(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids });
    expect(JSON.stringify(anonymous.data ?? null)).not.toMatch(/"id":"/);
  });

  it("left the other tenant's objects untouched", async () => {
    const license = await s.db.prisma.license.findUniqueOrThrow({ where: { id: other.licenseId } });
    expect(license.state).toBe('ACTIVE');
    expect(license.suspendedAt).toBeNull();
    expect(license.revokedAt).toBeNull();
    expect(license.revision).toBe(1);
    const active = await s.db.prisma.activation.count({ where: { licenseId: other.licenseId, status: 'ACTIVE' } });
    expect(active).toBe(1);
    const tokensLeft = await s.db.prisma.apiToken.count({ where: { tenantId: other.tenantId, revokedAt: null } });
    expect(tokensLeft).toBe(2);
  });
});
