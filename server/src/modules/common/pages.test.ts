import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';

/**
 * Paging goes on from the cursor's values, whatever became of its row: deleted since, or left out by
 * the filter the next page is asked with.
 */
let s: TestServer;
let token: string;

beforeAll(async () => {
  s = await startTestServer();
  token = (await s.tenant()).token;
});
afterAll(() => s.close());

const gql = async (query: string, variables: Record<string, unknown> = {}) => ok(await s.gql(query, variables, { token }));

const CUSTOMERS = `query($first: Int, $after: String, $last: Int, $before: String, $search: String) {
  customers(first: $first, after: $after, last: $last, before: $before, search: $search) {
    edges { cursor node { id name } } pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
  }
}`;
interface Page {
  edges: { node: { id: string } }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string | null; startCursor: string | null };
}
const names = (r: { customers: { edges: { node: { name: string } }[] } }) => r.customers.edges.map((e) => e.node.name);

describe('customers', () => {
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    // Two customers share a name: the order goes on by id between them.
    for (const name of ['Alpha', 'Bravo', 'Charlie', 'Charlie', 'Delta', 'Echo']) {
      const c = (await gql(`mutation($name: String!) { createCustomer(input: { name: $name }) { ... on Customer { id name } } }`, { name })).createCustomer;
      ids[ids[name] ? `${name}2` : name] = c.id;
    }
  });

  it('a page after a deleted customer goes on from where it stood', async () => {
    const first = (await gql(CUSTOMERS, { first: 2 })).customers;
    expect(first.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['Alpha', 'Bravo']);
    const extra = (await gql(`mutation { createCustomer(input: { name: "Bravura" }) { ... on Customer { id } } }`)).createCustomer.id;
    await gql(`mutation($id: ID!) { deleteCustomer(input: { customerId: $id }) { __typename } }`, { id: ids.Bravo });
    try {
      const next = await gql(CUSTOMERS, { first: 3, after: first.pageInfo.endCursor });
      expect(names(next)).toEqual(['Bravura', 'Charlie', 'Charlie']);
      expect(next.customers.pageInfo.hasNextPage).toBe(true);
      // Backwards from the deleted one too.
      const before = await gql(CUSTOMERS, { last: 5, before: first.pageInfo.endCursor });
      expect(names(before)).toEqual(['Alpha']);
      expect(before.customers.pageInfo.hasPreviousPage).toBe(false);
    } finally {
      ids.Bravo = (await gql(`mutation { createCustomer(input: { name: "Bravo" }) { ... on Customer { id } } }`)).createCustomer.id;
      await gql(`mutation($id: ID!) { deleteCustomer(input: { customerId: $id }) { __typename } }`, { id: extra });
    }
  });

  it('pages forward and back through equal names without a gap or a repeat', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: Page = (await gql(CUSTOMERS, { first: 2, after })).customers;
      seen.push(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    // Equal names go by id; a uuid sorts as its lower-case hex text does.
    const [a, b, c, c2, d, e] = ['Alpha', 'Bravo', 'Charlie', 'Charlie2', 'Delta', 'Echo'].map((k) => raw(ids[k]!));
    expect(seen.map(raw)).toEqual([a, b, ...[c, c2].sort(), d, e]);
    const back: string[] = [];
    let before: string | null = null;
    for (;;) {
      const page: Page = (await gql(CUSTOMERS, { last: 2, before })).customers;
      back.unshift(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasPreviousPage) break;
      before = page.pageInfo.startCursor;
    }
    expect(back).toEqual(seen);
  });

  it('a cursor taken without a search goes on within the search, skipping nothing', async () => {
    const first = (await gql(CUSTOMERS, { first: 1 })).customers; // Alpha, which the search leaves out
    const next = await gql(CUSTOMERS, { first: 5, after: first.pageInfo.endCursor, search: 'ha' });
    expect(names(next)).toEqual(['Charlie', 'Charlie']);
  });

  it('a forged cursor, or one of another list, is bad input', async () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const endpointCursor = b64(`GPC:T:${JSON.stringify(['S:7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f', 'D:1700000000000', 'S:7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f'])}`);
    const badId = b64(`GPC:T:${JSON.stringify(['S:7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f', 'S:Alpha', 'S:not-a-uuid'])}`);
    const oldStyle = b64('GPC:S:7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f');
    for (const after of [endpointCursor, badId, oldStyle]) {
      const r = await s.gql(CUSTOMERS, { first: 2, after }, { token });
      expect(r.errors?.[0]?.message, after).toMatch(/cursor/i);
      expect(r.errors?.[0]?.extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
    }
  });
});

describe('webhook endpoints', () => {
  it('a page after a deleted endpoint goes on from where it stood', async () => {
    const created: string[] = [];
    for (let i = 0; i < 4; i++) {
      created.push(
        (await gql(`mutation($url: String!) { createWebhookEndpoint(input: { url: $url }) { ... on CreateWebhookEndpointPayload { endpoint { id } } } }`, { url: `http://127.0.0.1:9/hook-${i}` }))
          .createWebhookEndpoint.endpoint.id,
      );
    }
    const LIST = `query($after: String) { webhookEndpoints(first: 2, after: $after) { edges { node { id url } } pageInfo { endCursor hasNextPage } } }`;
    const first = (await gql(LIST)).webhookEndpoints;
    expect(first.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([created[3], created[2]]);
    await gql(`mutation($id: ID!) { deleteWebhookEndpoint(input: { id: $id }) { __typename } }`, { id: created[2] });
    const next = (await gql(LIST, { after: first.pageInfo.endCursor })).webhookEndpoints;
    expect(next.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([created[1], created[0]]);
  });
});

describe('webhook deliveries', () => {
  it('a page of one status goes on after a delivery that left it', async () => {
    // Its own server: a first retry after 2 s (then 6 s, 18 s, ...) and ten attempts, so deliveries stay
    // PENDING while the receiver refuses them.
    const w = await startTestServer({ env: { TESSERA_WEBHOOK_RETRY_BASE_MS: '2000', TESSERA_WEBHOOK_MAX_ATTEMPTS: '10' } });
    const accepted = new Set<string>();
    const received = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.writeHead(accepted.has(JSON.parse(body).id) ? 200 : 500).end());
    });
    await new Promise<void>((resolve) => received.listen(0, '127.0.0.1', resolve));
    try {
      const t = (await w.tenant()).token;
      const q = async (query: string, variables: Record<string, unknown> = {}) => ok(await w.gql(query, variables, { token: t }));
      const port = (received.address() as { port: number }).port;
      const endpoint = (await q(`mutation($url: String!) { createWebhookEndpoint(input: { url: $url, eventTypes: ["license.revoked"] }) { ... on CreateWebhookEndpointPayload { endpoint { id } } } }`, { url: `http://127.0.0.1:${port}/hook` }))
        .createWebhookEndpoint.endpoint.id;
      for (let i = 0; i < 4; i++) await q(`mutation($id: ID!) { sendTestWebhook(input: { id: $id }) { __typename } }`, { id: endpoint });
      const LIST = `query($id: ID!, $after: String) { webhookEndpoint(id: $id) { deliveries(first: 2, after: $after, status: PENDING) {
        edges { node { id eventId attempts status } } pageInfo { endCursor hasNextPage } } } }`;
      type Delivery = { id: string; eventId: string; attempts: number; status: string };
      const pending = async (after?: string) => (await q(LIST, { id: endpoint, after })).webhookEndpoint.deliveries as { edges: { node: Delivery }[]; pageInfo: { endCursor: string } };
      // Every test delivery refused once, and so still pending (the endpoint takes no event of this test).
      for (let tries = 0; ; tries++) {
        const all = await q(`query($id: ID!) { webhookEndpoint(id: $id) { deliveries(first: 10) { edges { node { attempts status } } } } }`, { id: endpoint });
        const nodes = all.webhookEndpoint.deliveries.edges.map((e: { node: Delivery }) => e.node);
        if (nodes.length === 4 && nodes.every((n: Delivery) => n.attempts >= 1 && n.status === 'PENDING')) break;
        if (tries > 600) throw new Error(`deliveries not attempted: ${JSON.stringify(nodes)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const first = await pending();
      expect(first.edges).toHaveLength(2);
      const left = first.edges[1]!.node;
      // The receiver now takes the last delivery of the page: its retry delivers it.
      accepted.add(left.eventId);
      for (let tries = 0; ; tries++) {
        const d = await q(`query($id: ID!) { node(id: $id) { ... on WebhookDelivery { status } } }`, { id: left.id });
        if (d.node.status === 'SUCCEEDED') break;
        if (tries > 1200) throw new Error('the delivery was not retried');
        await new Promise((r) => setTimeout(r, 50));
      }
      const next = await pending(first.pageInfo.endCursor);
      expect(next.edges.map((e) => e.node.status)).toEqual(['PENDING', 'PENDING']);
      expect(next.edges.map((e) => e.node.id)).not.toContain(left.id);
    } finally {
      await new Promise<void>((resolve) => received.close(() => resolve()));
      await w.close();
    }
  });
});

describe('licenses', () => {
  it('a cursor from the unfiltered list goes on within a status filter, skipping nothing', async () => {
    const t = (await s.tenant()).token;
    const q = async (query: string, variables: Record<string, unknown> = {}) => ok(await s.gql(query, variables, { token: t }));
    const pid = (await q(`mutation { createProduct(input: { name: "P", code: "p" }) { ... on Product { id } } }`)).createProduct.id;
    const eid = (await q(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, { input: { productId: pid, name: 'E', code: 'e', licenseType: 'PERPETUAL' } })).createEdition.id;
    const ids: string[] = [];
    for (const name of ['oldest', 'middle', 'newest']) {
      ids.push((await q(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id } } } }`, { input: { editionId: eid, name } })).createLicense.license.id);
    }
    await q(`mutation($id: ID!) { suspendLicense(input: { licenseId: $id }) { __typename } }`, { id: ids[1] });
    const LIST = `query($after: String, $status: LicenseStatus) { licenses(first: 5, after: $after, status: $status) { edges { cursor node { name } } } }`;
    const all = (await q(LIST)).licenses.edges as { cursor: string; node: { name: string } }[];
    expect(all.map((e) => e.node.name)).toEqual(['newest', 'middle', 'oldest']);
    const active = await q(LIST, { after: all[1]!.cursor, status: 'ACTIVE' });
    expect(active.licenses.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['oldest']);
  });
});

describe('audit events', () => {
  it('a cursor from another filter skips no event of this one', async () => {
    const t = (await s.tenant()).token;
    const mk = (name: string) => s.gql(`mutation($name: String!) { createCustomer(input: { name: $name }) { __typename } }`, { name }, { token: t });
    await mk('one');
    await s.gql(`mutation { createProduct(input: { name: "P", code: "p" }) { __typename } }`, {}, { token: t });
    await mk('two');
    await mk('three');
    const EVENTS = `query($type: String, $after: String) { auditEvents(first: 10, type: $type, after: $after) { edges { node { type payload } } pageInfo { endCursor } } }`;
    const read = async (vars: Record<string, unknown>) => ok(await s.gql(EVENTS, vars, { token: t })).auditEvents;
    const all = await read({});
    const productAt = all.edges.findIndex((e: { node: { type: string } }) => e.node.type === 'product.created');
    // The cursor of the product's event (newest first: two customers are newer), then the customers after it.
    const upTo = await s.gql(`query { auditEvents(first: ${productAt + 1}) { pageInfo { endCursor } } }`, {}, { token: t });
    const after = ok(upTo).auditEvents.pageInfo.endCursor;
    const older = await read({ type: 'customer.created', after });
    expect(older.edges.map((e: { node: { payload: { name: string } } }) => e.node.payload.name)).toEqual(['one']);
  });

  it('a forged audit cursor is bad input', async () => {
    const after = Buffer.from('GPC:S:12abc').toString('base64');
    const r = await s.gql(`query($after: String) { auditEvents(first: 2, after: $after) { edges { cursor } } }`, { after }, { token });
    expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const r2 = await s.gql(`query($after: String) { auditEvents(first: 2, types: ["a.b", "c.d"], after: $after) { edges { cursor } } }`, { after }, { token });
    expect(r2.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

/** The database id of a Relay global id (customers' ids are global ids). */
function raw(id: string): string {
  return Buffer.from(id, 'base64').toString('utf8').split(':').pop()!;
}
