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
  isObjectType,
  isScalarType,
} from 'graphql';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { listen, sleep, subscribe, type Subscription, wsClient, type WsClient } from '../../../test/ws.ts';
import { issue } from '../activation/fixtures.ts';
import { sealerOf } from '../audit/chain.ts';

/**
 * Every admin query, mutation and subscription of the printed schema x every role x own/other tenant,
 * and node(id:) of every Node type x every role.
 * The minimum role of each field, as its authScopes in the code say (`member` = any role).
 * A field that appears in the schema without an entry here (or in PUBLIC) fails the test.
 */
type Role = 'READ_ONLY' | 'SUPPORT' | 'ADMIN' | 'OWNER';
const MINIMUM_ROLE: Record<string, Role> = {
  // queries
  'Query.activationsPerDay': 'READ_ONLY',
  'Query.activityCursor': 'READ_ONLY',
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
  'Mutation.changeMemberRole': 'ADMIN',
  'Mutation.changePassword': 'READ_ONLY',
  'Mutation.createApiToken': 'ADMIN',
  'Mutation.createCustomer': 'SUPPORT',
  'Mutation.updateCustomer': 'SUPPORT',
  'Mutation.deleteCustomer': 'ADMIN',
  'Mutation.createEdition': 'ADMIN',
  'Mutation.createFeature': 'ADMIN',
  'Mutation.createLicense': 'ADMIN',
  'Mutation.createMember': 'ADMIN',
  'Mutation.createMeter': 'ADMIN',
  'Mutation.createProduct': 'ADMIN',
  'Mutation.importLicenses': 'ADMIN',
  'Mutation.importOfflineDeactivation': 'SUPPORT',
  'Mutation.issueOfflineLicense': 'SUPPORT',
  'Mutation.refreshOfflineLicense': 'SUPPORT',
  'Mutation.reinstateLicense': 'SUPPORT',
  'Mutation.releaseActivation': 'SUPPORT',
  'Mutation.releaseLease': 'SUPPORT',
  'Mutation.renewLicense': 'ADMIN',
  'Mutation.removeMember': 'ADMIN',
  'Mutation.resetMemberPassword': 'ADMIN',
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

/**
 * Fields only a member signed in to the console may call, whatever their role (their own password): an API
 * token of any role is FORBIDDEN. The matrix runs with tokens; tenants.test.ts calls these with sessions.
 */
const SESSION_ONLY = new Set(['Mutation.changePassword']);

/**
 * Every subscription field: the minimum role to follow it live, and, for fields that resume after a past
 * event (`after`), the minimum role to do that: the same, as a resume gives what the feed would have
 * given live (a socket lost and back must leave no gap for any role).
 */
const SUBSCRIPTION_ROLE: Record<string, { live: Role; replay?: Role }> = {
  'Subscription.activity': { live: 'READ_ONLY', replay: 'READ_ONLY' },
  'Subscription.complianceAlerts': { live: 'READ_ONLY', replay: 'READ_ONLY' },
  'Subscription.licenseLive': { live: 'READ_ONLY' },
};

/** The minimum role to read each Node type through node(id:); where a list query returns the type, they must agree. */
const NODE_ROLE: Record<string, Role> = {
  Activation: 'READ_ONLY',
  ApiToken: 'ADMIN',
  Customer: 'READ_ONLY',
  Edition: 'READ_ONLY',
  Feature: 'READ_ONLY',
  Lease: 'READ_ONLY',
  License: 'READ_ONLY',
  Member: 'ADMIN',
  Meter: 'READ_ONLY',
  Product: 'READ_ONLY',
  WebhookDelivery: 'READ_ONLY',
  WebhookEndpoint: 'READ_ONLY',
};

/**
 * Fields that need more than their type: what a webhook delivery carries is the event as the audit log
 * holds it (a member's email, say) or the receiver's answer, so it needs the audit log's role.
 */
const FIELD_ROLE: Record<string, Role> = {
  'WebhookDelivery.body': 'SUPPORT',
  'WebhookDelivery.lastResponseBody': 'SUPPORT',
  'WebhookAttempt.responseBody': 'SUPPORT',
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
const ACTIVATE_ID = `mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on ActivateSuccess { activation { id } } } }`;
const RANK: Record<Role, number> = { READ_ONLY: 0, SUPPORT: 1, ADMIN: 2, OWNER: 3 };

const printed = buildSchema(readFileSync(path.resolve(import.meta.dirname, '../../../../schema/schema.graphql'), 'utf8'));
const rootFields = [printed.getQueryType()!, printed.getMutationType()!].flatMap((t) =>
  Object.values(t.getFields()).map((f) => ({ coordinate: `${t.name}.${f.name}`, operation: t.name === 'Query' ? 'query' : 'mutation', field: f })),
);
const subscriptionFields = Object.values(printed.getSubscriptionType()!.getFields()).map((f) => ({ coordinate: `Subscription.${f.name}`, field: f }));
const nodeTypes = Object.values(printed.getTypeMap())
  .filter((t) => isObjectType(t) && t.getInterfaces().some((i) => i.name === 'Node'))
  .map((t) => t.name);

/** Every leaf field of what a field returns (argument-free), so whatever it delivers can be checked for leaks. */
function leafSelection(field: GraphQLField<unknown, unknown>): string {
  const type = getNamedType(field.type);
  if (!isObjectType(type)) return '';
  const leaves = Object.values(type.getFields()).filter((f) => isLeafType(getNamedType(f.type)) && f.args.every((a) => !isNonNullType(a.type)));
  return ` { __typename ${leaves.map((f) => f.name).join(' ')} }`;
}

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
  let other: { memberHash: string; token: string; ids: Record<string, string>; secrets: string[]; tenantId: string; licenseId: string; cursor: string; trigger(): Promise<void> };
  let own: { id: string; slug: string; token: string; nodes: Record<string, string>; secrets: string[]; licenseId: string; cursor: string; trigger(): Promise<void> };
  let url: string;
  const sockets: WsClient[] = [];

  /** The newest sealed event of a tenant: where a replay with `after` starts. */
  async function cursorOf(tenantId: string): Promise<string> {
    await sealerOf(s.app.deps).seal(tenantId);
    const e = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId, seq: { not: null } }, orderBy: { seq: 'desc' } });
    return e.id.toString();
  }

  /** A customer and a refused activation (a compliance event): something for every feed of the tenant. */
  function triggerFor(token: string, key: string) {
    return async () => {
      ok(await s.gql(`mutation($name: String!) { createCustomer(input: { name: $name }) { __typename } }`, { name: `Trigger ${randomUUID().slice(0, 8)}` }, { token }));
      ok(await s.gql(ACTIVATE_ID, { input: { key, fingerprint: `over-${randomUUID()}` } }));
    };
  }

  beforeAll(async () => {
    s = await startTestServer();
    url = await listen(s.app);
    const ownTenant = await s.tenant();
    const nodes: Record<string, string> = {};
    for (const role of ROLES) {
      const r = ok(
        await s.gql(
          `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { ... on CreateApiTokenPayload { token apiToken { id } } } }`,
          { input: { name: role, role } },
          { token: ownTenant.token },
        ),
      );
      tokens[role] = r.createApiToken.token;
      nodes.ApiToken = r.createApiToken.apiToken.id;
    }
    // The own tenant, with one of every Node type.
    const t = ownTenant.token;
    const ownLic = await issue(s, t, { maxActivations: 1 });
    const floating = await issue(s, t, { licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 2, leaseSeconds: 60 });
    const endpoint = ok(await s.gql(`mutation { createWebhookEndpoint(input: { url: "http://127.0.0.1:9/hook" }) { ... on CreateWebhookEndpointPayload { endpoint { id } } } }`, {}, { token: t }));
    const endpointId = endpoint.createWebhookEndpoint.endpoint.id;
    Object.assign(nodes, {
      License: ownLic.globalId,
      Product: ownLic.productId,
      Edition: ownLic.editionId,
      Activation: ok(await s.gql(ACTIVATE_ID, { input: { key: ownLic.key, fingerprint: 'own-device' } })).activate.activation.id,
      Lease: ok(await s.gql(`mutation($input: CheckoutSeatInput!) { checkoutSeat(input: $input) { ... on SeatLease { id } } }`, { input: { key: floating.key, fingerprint: 'own-seat' } })).checkoutSeat.id,
      Customer: ok(await s.gql(`mutation { createCustomer(input: { name: "Own Tenant Customer" }) { ... on Customer { id } } }`, {}, { token: t })).createCustomer.id,
      Member: ok(
        await s.gql(`mutation($input: CreateMemberInput!) { createMember(input: $input) { ... on Member { id } } }`, { input: { email: 'own@tenant.test', password: 'correct horse battery', role: 'ADMIN' } }, { token: t }),
      ).createMember.id,
      Feature: ok(await s.gql(`mutation($p: ID!) { createFeature(input: { productId: $p, code: "f1", name: "F1" }) { ... on Feature { id } } }`, { p: ownLic.productId }, { token: t })).createFeature.id,
      Meter: ok(await s.gql(`mutation($p: ID!) { createMeter(input: { productId: $p, code: "m1", name: "M1" }) { ... on Meter { id } } }`, { p: ownLic.productId }, { token: t })).createMeter.id,
      WebhookEndpoint: endpointId,
      WebhookDelivery: ok(await s.gql(`mutation($id: ID!) { sendTestWebhook(input: { id: $id }) { ... on WebhookDelivery { id } } }`, { id: endpointId }, { token: t })).sendTestWebhook.id,
    });
    // The replay cursor lies before a compliance event, so every feed has something to replay.
    const ownCursor = await cursorOf(ownTenant.id);
    const ownTrigger = triggerFor(t, ownLic.key);
    await ownTrigger();
    await cursorOf(ownTenant.id);
    own = { id: ownTenant.id, slug: ownTenant.slug, token: t, nodes, licenseId: ownLic.globalId, cursor: ownCursor, trigger: ownTrigger, secrets: ['own@tenant.test'] };
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
    const otherFloating = await issue(s, b.token, { licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 1, leaseSeconds: 60 });
    const otherLease = ok(
      await s.gql(`mutation($input: CheckoutSeatInput!) { checkoutSeat(input: $input) { ... on SeatLease { id } } }`, { input: { key: otherFloating.key, fingerprint: 'b-seat' } }),
    ).checkoutSeat.id;
    const ids = {
      licenseId: lic.globalId,
      leaseId: otherLease,
      productId: lic.productId,
      editionId: lic.editionId,
      customerId: customer.createCustomer.id,
      activationId: act.activate.activation.id,
      memberId: member.createMember.id,
      id: apiToken.createApiToken.apiToken.id,
      licenseKey: lic.key,
    };
    const full = await issue(s, b.token, { maxActivations: 1 });
    ok(await s.gql(ACTIVATE_ID, { input: { key: full.key, fingerprint: 'b-device' } }));
    const otherCursor = await cursorOf(b.id);
    other = {
      memberHash: (await s.db.prisma.user.findFirstOrThrow({ where: { tenantId: b.id } })).passwordHash,
      token: b.token,
      ids,
      tenantId: b.id,
      licenseId: lic.id,
      cursor: otherCursor,
      trigger: triggerFor(b.token, full.key),
      secrets: [...Object.values(ids), lic.id, full.globalId, full.id, 'Other Tenant Customer', 'other@tenant.test', b.slug],
    };
  });
  afterAll(async () => {
    await Promise.all(sockets.map((c) => c.dispose()));
    await s.close();
  });

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
        if (RANK[role] < RANK[MINIMUM_ROLE[coordinate]!] || SESSION_ONLY.has(coordinate)) {
          expect(r.errors?.[0]?.extensions?.code, label).toBe('FORBIDDEN');
          continue;
        }
        const code = r.errors?.[0]?.extensions?.code;
        expect(['UNAUTHENTICATED', 'FORBIDDEN'], label).not.toContain(code);
        // Given the other tenant's ids, an allowed caller gets "not found" (or a refused input), never the object.
        const usesIds = Object.keys(variables).length > 0 && JSON.stringify(variables).match(/"(licenseId|productId|editionId|customerId|activationId|leaseId|memberId|id)"/);
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

  it('member management on the own tenant: every role, by API token and by session', async () => {
    const member = async (role: Role) => {
      const email = `m-${randomUUID().slice(0, 8)}@tenant.test`;
      const r = await s.gql(`mutation($input: CreateMemberInput!) { createMember(input: $input) { ... on Member { id } } }`, { input: { email, password: 'correct horse battery', role } }, { token: own.token });
      return { id: ok(r).createMember.id as string, email };
    };
    const operations = (memberId: string) => [
      { coordinate: 'Mutation.changeMemberRole', query: `mutation($memberId: ID!) { changeMemberRole(input: { memberId: $memberId, role: READ_ONLY }) { __typename } }`, ok: 'Member' },
      { coordinate: 'Mutation.resetMemberPassword', query: `mutation($memberId: ID!) { resetMemberPassword(input: { memberId: $memberId, password: "another good password" }) { __typename } }`, ok: 'Member' },
      { coordinate: 'Mutation.removeMember', query: `mutation($memberId: ID!) { removeMember(input: { memberId: $memberId }) { __typename } }`, ok: 'RemoveMemberPayload' },
    ];
    for (const role of ROLES) {
      const { id } = await member('SUPPORT');
      for (const op of operations(id)) {
        const r = await s.gql(op.query, { memberId: id }, { token: tokens[role] });
        const label = `${role} ${op.coordinate}: ${JSON.stringify(r.errors ?? r.data)}`;
        if (RANK[role] < RANK[MINIMUM_ROLE[op.coordinate]!]) expect(r.errors?.[0]?.extensions?.code, label).toBe('FORBIDDEN');
        else expect(ok(r)[op.coordinate.split('.')[1]!].__typename, label).toBe(op.ok);
      }
      const exists = await s.db.prisma.user.count({ where: { id: decodeGlobalID(id).id } });
      expect(exists, role).toBe(RANK[role] < RANK.ADMIN ? 1 : 0);
      // Adding a member: from ADMIN up, below OWNER; an owner only by an owner (the role is an input, so a ValidationError).
      for (const added of ROLES) {
        const r = await s.gql(`mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, { input: { email: `c-${randomUUID().slice(0, 8)}@tenant.test`, password: 'correct horse battery', role: added } }, { token: tokens[role] });
        const label = `${role} createMember(${added}): ${JSON.stringify(r.errors ?? r.data)}`;
        if (RANK[role] < RANK[MINIMUM_ROLE['Mutation.createMember']!]) expect(r.errors?.[0]?.extensions?.code, label).toBe('FORBIDDEN');
        else expect(ok(r).createMember.__typename, label).toBe(added === 'OWNER' && role !== 'OWNER' ? 'ValidationError' : 'Member');
      }
      // Every role may change its own password, signed in; never with an API token (SESSION_ONLY).
      const self = await member(role);
      const signIn = await s.gql(`mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`, { input: { tenant: own.slug, email: self.email, password: 'correct horse battery' } });
      const cookie = signIn.response.headers.get('set-cookie')!.split(';')[0]!;
      const changed = await s.gql(
        `mutation { changePassword(input: { currentPassword: "correct horse battery", newPassword: "another good password" }) { __typename } }`,
        {},
        { headers: { cookie } },
      );
      expect(ok(changed).changePassword.__typename, role).toBe('ChangePasswordPayload');
    }
  });

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

  it('node and nodes refuse a malformed global id as BAD_USER_INPUT, like every other id argument', async () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const malformed = {
      garbage: 'garbage',
      empty: '',
      'a raw uuid': randomUUID(),
      'an unknown type name': b64(`Nope:${randomUUID()}`),
      'a type that is not a Node': b64(`Entitlement:${randomUUID()}`),
      'a lowercase type name': b64(`license:${randomUUID()}`),
      'no id after the type': b64('License:'),
      'a uuid cut short': b64(`License:${randomUUID().slice(0, 20)}`),
    };
    for (const [what, id] of Object.entries(malformed)) {
      const one = await s.gql(`query($id: ID!) { node(id: $id) { __typename id } }`, { id }, { token: own.token });
      expect(one.errors?.map((e) => e.extensions?.code), `node(${what}): ${JSON.stringify(one.errors)}`).toEqual(['BAD_USER_INPUT']);
      expect(one.data?.node ?? null, what).toBeNull();
      // One bad id among good ones: the whole list is refused, as with any bad argument.
      const many = await s.gql(`query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }`, { ids: [own.licenseId, id] }, { token: own.token });
      expect(many.errors?.map((e) => e.extensions?.code), `nodes(${what}): ${JSON.stringify(many.errors)}`).toEqual(['BAD_USER_INPUT']);
      expect(many.data?.nodes ?? null, what).toBeNull();
    }
    // A well-formed id that names nothing is null, not an error.
    const unknown = await s.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: encodeGlobalID('License', randomUUID()) }, { token: own.token });
    expect(unknown.errors).toBeUndefined();
    expect(unknown.data).toEqual({ node: null });
  });

  it('has a minimum role for every subscription field (a resume as the live feed) and every Node type', () => {
    expect(subscriptionFields.map((f) => f.coordinate).sort()).toEqual(Object.keys(SUBSCRIPTION_ROLE).sort());
    for (const { coordinate, field } of subscriptionFields) {
      const replays = field.args.some((a) => a.name === 'after');
      expect(SUBSCRIPTION_ROLE[coordinate]!.replay, coordinate).toBe(replays ? SUBSCRIPTION_ROLE[coordinate]!.live : undefined);
    }
    expect(MINIMUM_ROLE['Query.activityCursor']).toBe(SUBSCRIPTION_ROLE['Subscription.activity']!.live);
    expect(nodeTypes.sort()).toEqual(Object.keys(NODE_ROLE).sort());
    // node(id:) shows no more than the list that returns the same type.
    for (const [type, list] of Object.entries({ Member: 'Query.members', ApiToken: 'Query.apiTokens', License: 'Query.licenses', Customer: 'Query.customers', Product: 'Query.products', WebhookEndpoint: 'Query.webhookEndpoints' })) {
      expect(NODE_ROLE[type], `${type} / ${list}`).toBe(MINIMUM_ROLE[list]);
    }
  });

  it('own-tenant node lookups: the object at its minimum role and above, FORBIDDEN below', async () => {
    expect(Object.keys(own.nodes).sort()).toEqual(Object.keys(NODE_ROLE).sort());
    for (const role of ROLES) {
      for (const [type, id] of Object.entries(own.nodes)) {
        const label = `${role} node(${type})`;
        for (const query of [`query($id: ID!) { node(id: $id) { __typename id } }`, `query($id: ID!) { nodes(ids: [$id]) { __typename id } }`]) {
          const r = await s.gql(query.replace('{ __typename id }', `{ __typename id ... on Member { email role } }`), { id }, { token: tokens[role] });
          const found = (r.data?.node ?? r.data?.nodes?.[0]) as { __typename: string; id: string } | null | undefined;
          if (RANK[role] >= RANK[NODE_ROLE[type]!]) {
            expect(r.errors, `${label}: ${JSON.stringify(r.errors)}`).toBeUndefined();
            expect(found, label).toMatchObject({ __typename: type, id });
          } else {
            expect(r.errors?.[0]?.extensions?.code, `${label}: ${JSON.stringify(r)}`).toBe('FORBIDDEN');
            expect(found ?? null, label).toBeNull();
            for (const secret of own.secrets) expect(JSON.stringify(r.data), label).not.toContain(secret);
          }
        }
      }
    }
  });

  it('fields that need more than their type: null and FORBIDDEN below their role, however reached', async () => {
    for (const [coordinate, role] of Object.entries(FIELD_ROLE)) expect(RANK[role], coordinate).toBeGreaterThanOrEqual(RANK[NODE_ROLE.WebhookDelivery!]);
    expect(FIELD_ROLE['WebhookDelivery.body']).toBe(MINIMUM_ROLE['Query.auditEvents']);
    // The endpoint was created before the member: the member.created delivery carries the member's email.
    const attempted = () => s.db.prisma.webhookDelivery.findFirst({ where: { eventType: 'member.created', tenantId: own.id, attempts: { gt: 0 } } });
    for (let i = 0; i < 100 && !(await attempted()); i++) await sleep(100);
    const member = encodeGlobalID('WebhookDelivery', (await attempted())!.id);
    const fields = 'id eventType body lastResponseBody attemptLog { number responseBody }';
    const list = `{ webhookEndpoints(first: 1) { edges { node { deliveries(first: 10) { edges { node { ${fields} } } } } } } }`;
    const node = `query($id: ID!) { node(id: $id) { ... on WebhookDelivery { ${fields} } } }`;
    type Delivery = { id: string; body: string | null; lastResponseBody: string | null; attemptLog: { responseBody: string | null }[] };
    const seen = (r: { data?: any }): Delivery[] => (r.data?.node ? [r.data.node] : (r.data?.webhookEndpoints?.edges ?? []).flatMap((e: any) => e.node.deliveries.edges.map((d: any) => d.node)));
    for (const role of ROLES) {
      for (const r of [await s.gql(list, {}, { token: tokens[role] }), await s.gql(node, { id: member }, { token: tokens[role] })]) {
        const label = `${role}: ${JSON.stringify(r).slice(0, 300)}`;
        const deliveries = seen(r);
        expect(deliveries.length, label).toBeGreaterThan(0);
        if (RANK[role] >= RANK.SUPPORT) {
          expect(r.errors, label).toBeUndefined();
          for (const d of deliveries) expect(d.body, label).toBeTruthy();
          if (r.data?.node) expect(deliveries[0]!.body, label).toContain('own@tenant.test');
          continue;
        }
        expect(new Set(r.errors?.map((e) => e.extensions?.code)), label).toEqual(new Set(['FORBIDDEN']));
        const paths = new Set(r.errors?.map((e) => String((e as { path?: (string | number)[] }).path?.at(-1))));
        expect(paths, label).toContain('body');
        for (const p of paths) expect(['body', 'lastResponseBody', 'responseBody'], label).toContain(p);
        for (const d of deliveries) {
          expect(d.body, label).toBeNull();
          expect(d.lastResponseBody, label).toBeNull();
          for (const a of d.attemptLog) expect(a.responseBody, label).toBeNull();
        }
        if (r.data?.node) expect(paths, label).toEqual(new Set(['body', 'lastResponseBody', 'responseBody']));
        for (const secret of own.secrets) expect(JSON.stringify(r.data), label).not.toContain(secret);
      }
    }
  });

  const of = (xs: { type: string; seq: number }[], type: string) => xs.find((x) => x.type === type)!;
  type FeedItem = { id: string; seq: number; type: string; subjectType: string; subjectId: string; payload: Record<string, unknown> | null };
  const FEED = 'subscription($after: ID) { activity(after: $after) { id seq type subjectType subjectId payload } }';

  it('the live feed withholds the payload of events about members and API tokens from roles that can read neither them nor the audit log; a resume with `after` gives every role exactly what it had live', async () => {
    const feeds = Object.fromEntries(
      ROLES.map((role) => {
        const socket = wsClient(url, tokens[role]);
        sockets.push(socket);
        return [role, subscribe<FeedItem>(socket.client, FEED, {}, (d) => d.activity)];
      }),
    ) as Record<Role, Subscription<FeedItem>>;
    // A feed without `after` starts at the events sealed once it is running: products are made until one
    // reaches every feed (on a loaded machine a socket can take a while), then the events under test.
    for (let attempt = 1; !ROLES.every((role) => feeds[role].items.some((x) => x.type === 'product.created')); attempt++) {
      ok(await s.gql(`mutation { createProduct(input: { name: "Probe", code: "feed-probe-${attempt}-${randomUUID().slice(0, 8)}" }) { __typename } }`, {}, { token: own.token }));
      await Promise.all(ROLES.map((role) => feeds[role].until((xs) => xs.some((x) => x.type === 'product.created'), 2_000).catch((err: Error) => {
        if (attempt >= 10) throw err;
      })));
    }
    // Every feed runs since before this event: what follows it, each has had live.
    const resumeAt = await cursorOf(own.id);
    const resumeSeq = Number((await s.db.prisma.auditEvent.findUniqueOrThrow({ where: { id: BigInt(resumeAt) } })).seq);
    const email = `feed-${randomUUID().slice(0, 8)}@tenant.test`;
    ok(await s.gql(`mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, { input: { email, password: 'correct horse battery', role: 'OWNER' } }, { token: own.token }));
    ok(await s.gql(`mutation { createApiToken(input: { name: "billing-integration-prod", role: OWNER }) { __typename } }`, {}, { token: own.token }));
    ok(await s.gql(`mutation { createCustomer(input: { name: "Feed Customer Ltd" }) { __typename } }`, {}, { token: own.token }));
    for (const role of ROLES) {
      const items = await feeds[role].until((xs) => ['member.created', 'api_token.created', 'customer.created'].every((t) => xs.some((x) => x.type === t)));
      const of = (type: string) => items.find((x) => x.type === type)!;
      // A customer is READ_ONLY's to read: its events keep their payload.
      expect(of('customer.created').payload, role).toMatchObject({ name: 'Feed Customer Ltd' });
      if (RANK[role] >= RANK[MINIMUM_ROLE['Query.auditEvents']!]) {
        expect(of('member.created').payload, role).toMatchObject({ email, role: 'OWNER' });
        expect(of('api_token.created').payload, role).toMatchObject({ name: 'billing-integration-prod' });
      } else {
        expect(RANK[role]).toBeLessThan(RANK[MINIMUM_ROLE['Query.members']!]);
        expect(of('member.created'), role).toMatchObject({ subjectType: 'User', payload: null });
        expect(of('api_token.created'), role).toMatchObject({ subjectType: 'ApiToken', payload: null });
        expect(JSON.stringify(items), role).not.toMatch(new RegExp(`${email}|billing-integration-prod`));
      }
      expect(feeds[role].errors, role).toEqual([]);
    }
    // The same events again, resumed from the log after `resumeAt` as after a lost socket: for every role
    // the same ids in the same order, each payload withheld or not as it was live.
    const lastSeq = Math.max(...ROLES.map((role) => of(feeds[role].items, 'customer.created').seq));
    const window = (xs: FeedItem[]) => xs.filter((x) => x.seq > resumeSeq && x.seq <= lastSeq);
    for (const role of ROLES) {
      const socket = wsClient(url, tokens[role]);
      sockets.push(socket);
      const resumed = subscribe<FeedItem>(socket.client, FEED, { after: resumeAt }, (d) => d.activity);
      const items = await resumed.until((xs) => xs.some((x) => x.seq >= lastSeq));
      expect(resumed.errors, role).toEqual([]);
      expect(window(items).length, role).toBeGreaterThanOrEqual(3);
      expect(window(items), role).toEqual(window(feeds[role].items));
      resumed.stop();
      feeds[role].stop();
    }
  });

  it('a resume below SUPPORT reaches back only to when its member or API token was created: earlier events are history', async () => {
    const early = await cursorOf(own.id);
    ok(await s.gql(`mutation { createCustomer(input: { name: "Before the late tokens" }) { __typename } }`, {}, { token: own.token }));
    const late = {} as Record<Role, { token: string; id: string }>;
    for (const role of ROLES) {
      const r = ok(await s.gql(`mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { ... on CreateApiTokenPayload { token apiToken { id } } } }`, { input: { name: `late ${role}`, role } }, { token: own.token }));
      late[role] = { token: r.createApiToken.token, id: r.createApiToken.apiToken.id };
    }
    ok(await s.gql(`mutation { createCustomer(input: { name: "After the late tokens" }) { __typename } }`, {}, { token: own.token }));
    const feeds = ROLES.map((role) => {
      const socket = wsClient(url, late[role].token);
      sockets.push(socket);
      return { role, sub: subscribe<FeedItem>(socket.client, FEED, { after: early }, (d) => d.activity) };
    });
    const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':').at(-1)!;
    const before = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: own.id, type: 'customer.created', payload: { path: ['name'], equals: 'Before the late tokens' } } });
    for (const { role, sub } of feeds) {
      const items = await sub.until((xs) => xs.some((x) => x.type === 'customer.created' && x.payload?.name === 'After the late tokens'));
      expect(sub.errors, role).toEqual([]);
      const mine = items.find((x) => x.type === 'api_token.created' && x.subjectId === rawId(late[role].id))!;
      expect(mine, role).toBeDefined();
      if (RANK[role] >= RANK[MINIMUM_ROLE['Query.auditEvents']!]) {
        // The audit log's readers resume from any event: all of it, the tokens made before their own too.
        expect(items.some((x) => x.payload?.name === 'Before the late tokens'), role).toBe(true);
        expect(items.filter((x) => x.type === 'api_token.created').length, role).toBe(ROLES.length);
      } else {
        // From its own creation on (withheld, as live), never an event from before it.
        expect(mine.payload, role).toBeNull();
        expect(items.filter((x) => x.seq <= Number(before.seq)), role).toEqual([]);
        expect(items.filter((x) => x.type === 'api_token.created').length, role).toBe(ROLES.length - ROLES.indexOf(role));
        expect(JSON.stringify(items), role).not.toContain('Before the late tokens');
      }
      sub.stop();
    }
  });

  it('subscriptions refuse anonymous callers (SSE: UNAUTHENTICATED; graphql-ws: 4403 on connect)', async () => {
    for (const { coordinate, field } of subscriptionFields) {
      const { query, variables } = subscriptionFor(field, 'own', false);
      const res = await s.fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query, variables }),
      });
      expect(await res.text(), coordinate).toMatch(/UNAUTHENTICATED/);
    }
    const anonymous = wsClient(url, null);
    sockets.push(anonymous);
    expect(await Promise.race([anonymous.closed, sleep(5000).then(() => 'open')])).toBe(4403);
  });

  /** A subscription operation for the own or the other tenant's ids; `replay` resumes after a past event. */
  function subscriptionFor(field: GraphQLField<unknown, unknown>, tenant: 'own' | 'other', replay: boolean) {
    const values: Record<string, string> =
      tenant === 'own' ? { licenseId: own.licenseId, after: own.cursor } : { licenseId: other.ids.licenseId!, after: other.cursor };
    const args = field.args.filter((a) => isNonNullType(a.type) || (replay && a.name === 'after'));
    const vars = args.map((a) => `$${a.name}: ${a.type.toString()}`).join(', ');
    const call = args.map((a) => `${a.name}: $${a.name}`).join(', ');
    const query = `subscription${vars ? `(${vars})` : ''} { ${field.name}${call ? `(${call})` : ''}${leafSelection(field)} }`;
    return { query, variables: Object.fromEntries(args.map((a) => [a.name, values[a.name]])), usesIds: args.length > 0 };
  }

  it('subscriptions over graphql-ws, every role x own/other tenant, live and replayed', async () => {
    type Case = { label: string; sub: Subscription<Record<string, { __typename: string; id?: string; licenseId?: string }>>; expected: 'FORBIDDEN' | 'NOT_FOUND' | 'data' };
    const cases: Case[] = [];
    for (const role of ROLES) {
      const socket = wsClient(url, tokens[role]);
      sockets.push(socket);
      for (const { coordinate, field } of subscriptionFields) {
        const required = SUBSCRIPTION_ROLE[coordinate]!;
        for (const replay of required.replay ? [false, true] : [false]) {
          // Without ids the operation is the same for both tenants: it follows the caller's own.
          for (const tenant of subscriptionFor(field, 'other', replay).usesIds ? (['own', 'other'] as const) : (['own'] as const)) {
            const { query, variables } = subscriptionFor(field, tenant, replay);
            const minimum = replay ? required.replay! : required.live;
            const expected = RANK[role] < RANK[minimum] ? 'FORBIDDEN' : tenant === 'own' ? 'data' : 'NOT_FOUND';
            cases.push({ label: `${role} ${coordinate}${replay ? '(after)' : ''} ${tenant}`, sub: subscribe(socket.client, query, variables), expected });
          }
        }
      }
    }
    const codes = (c: Case) => (c.sub.errors.flat() as { extensions?: { code?: string } }[]).map((e) => e.extensions?.code ?? String(e));
    // Live feeds deliver what happens after they start: keep things happening in both tenants until every case has answered.
    const deadline = Date.now() + 20_000;
    const settled = (c: Case) => c.sub.errors.length > 0 || (c.expected === 'data' && c.sub.items.length > 0);
    while (!cases.every(settled) && Date.now() < deadline) {
      await Promise.all([own.trigger(), other.trigger()]);
      await sleep(100);
    }
    await Promise.all([own.trigger(), other.trigger()]);
    await sleep(500);
    for (const c of cases) {
      const seen = JSON.stringify({ items: c.sub.items, errors: c.sub.errors }).slice(0, 400);
      for (const secret of other.secrets) expect(seen, c.label).not.toContain(secret);
      if (c.expected === 'data') {
        expect(c.sub.errors, `${c.label}: ${seen}`).toEqual([]);
        expect(c.sub.items.length, c.label).toBeGreaterThan(0);
        // Only the caller's tenant: its events, its license.
        for (const item of c.sub.items.flatMap((d) => Object.values(d))) {
          if (item.__typename === 'ActivityEvent') {
            const row = await s.db.prisma.auditEvent.findUniqueOrThrow({ where: { id: BigInt(item.id!) }, select: { tenantId: true } });
            expect(row.tenantId, `${c.label}: ${JSON.stringify(item)}`).toBe(own.id);
          } else expect(item.licenseId, c.label).toBe(own.licenseId);
        }
      } else {
        expect(codes(c), `${c.label}: ${seen}`).toEqual([c.expected]);
        expect(c.sub.items, c.label).toEqual([]);
      }
      c.sub.stop();
    }
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
    const members = await s.db.prisma.user.findMany({ where: { tenantId: other.tenantId }, select: { email: true, role: true, passwordHash: true } });
    expect(members.map((m) => [m.email, m.role])).toEqual([['other@tenant.test', 'ADMIN']]);
    expect(members[0]!.passwordHash).toBe(other.memberHash);
  });
});
