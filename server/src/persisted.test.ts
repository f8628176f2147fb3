import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OPERATIONS, type OperationName } from '../../sdk/src/operations.ts';
import { operationHash } from '../../sdk/src/client.ts';
import { startTestServer, type TestServer } from '../test/harness.ts';
import { type Issued, issueLicense } from './modules/leases/fixtures.ts';

/**
 * Operations sent by hash run compiled by graphql-jit, full documents on graphql-js. Each scenario
 * runs on two identically issued licenses, one per executor, step by step: the answers (data,
 * errors, HTTP status) must be the same once the values that differ by nature (ids, keys, times,
 * signatures) are replaced by their kind, and so must what the steps left in the database.
 */

let s: TestServer;
let token: string;

interface Twin {
  via: 'hash' | 'text';
  license: Issued;
  /** Answers of earlier steps, by step label. */
  seen: Record<string, any>;
}
type Step = [label: string, op: OperationName, variables: (t: Twin) => Record<string, unknown>];

async function send(via: Twin['via'], op: OperationName, variables: Record<string, unknown>) {
  const body = via === 'hash' ? { operationName: op, variables, extensions: { persistedQuery: { version: 1, sha256Hash: operationHash(op) } } } : { operationName: op, variables, query: OPERATIONS[op] };
  const response = await s.fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as { data?: any; errors?: unknown[] } };
}

const VOLATILE = new Set(['id', 'token', 'receipt', 'activatedAt', 'lastHeartbeatAt', 'nextHeartbeatBy', 'expiresAt']);
/** Replaces per-license values by their kind, so two twins' answers compare equal when they behave alike. */
function normal(value: unknown, twin: Twin): unknown {
  if (Array.isArray(value)) return value.map((v) => normal(v, twin));
  if (typeof value === 'string') return value.replaceAll(twin.license.key, '<key>').replaceAll(twin.license.id, '<license>');
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, VOLATILE.has(k) && typeof v === 'string' ? `<${k}>` : normal(v, twin)]),
  );
}

async function twins(terms: Record<string, unknown>, meters: string[] = []): Promise<[Twin, Twin]> {
  const make = async (via: Twin['via']) => ({ via, license: await issueLicense(s, token, terms, { meters }), seen: {} });
  return [await make('hash'), await make('text')];
}

/** Runs the steps on both twins in turn and compares each pair of answers. */
async function same(pair: [Twin, Twin], steps: Step[]) {
  for (const [label, op, variables] of steps) {
    const answers = [];
    for (const twin of pair) {
      const answer = await send(twin.via, op, variables(twin));
      twin.seen[label] = answer.body.data;
      answers.push({ status: answer.status, body: normal(answer.body, twin) });
    }
    expect(answers[0], `${label} (${op})`).toEqual(answers[1]);
  }
}

async function footprint(licenseId: string) {
  const [activations, samples, leases, tickets, ledger, events] = await Promise.all([
    s.db.prisma.activation.findMany({ where: { licenseId }, select: { status: true, fingerprint: true } }),
    s.db.prisma.heartbeatSample.count({ where: { activation: { licenseId } } }),
    s.db.prisma.lease.findMany({ where: { licenseId }, select: { status: true } }),
    s.db.prisma.usageTicket.findMany({ where: { licenseId }, select: { status: true, quantity: true } }),
    s.db.prisma.usageLedgerEntry.aggregate({ where: { licenseId }, _sum: { quantity: true }, _count: true }),
    s.db.prisma.auditEvent.groupBy({ by: ['type'], where: { licenseId }, _count: true, orderBy: { type: 'asc' } }),
  ]);
  const sorted = <T>(rows: T[]) => rows.map((r) => JSON.stringify(r)).sort();
  return { activations: sorted(activations), samples, leases: sorted(leases), tickets: sorted(tickets), ledger, events };
}

/** Compliance events follow the audit seal after commit, so the twins' footprints agree once both have settled. */
async function sameFootprint([a, b]: [Twin, Twin]) {
  await vi.waitFor(async () => expect(await footprint(a.license.id)).toEqual(await footprint(b.license.id)), { timeout: 10_000, interval: 100 });
}

beforeAll(async () => {
  s = await startTestServer();
  ({ token } = await s.tenant());
});
afterAll(() => s?.close());

describe('persisted operations compiled by graphql-jit answer as graphql-js does', () => {
  it('compiles only what is sent by hash', async () => {
    expect((await send('text', 'Ping', {})).body).toEqual({ data: { noop: true } });
    expect(s.app.compiledOperations.size).toBe(0);
    expect((await send('hash', 'Ping', {})).body).toEqual({ data: { noop: true } });
    expect([...s.app.compiledOperations.keys()]).toEqual([OPERATIONS.Ping]);
  });

  it('activation, heartbeat, validation and deactivation, refusals and bad variables included', async () => {
    const pair = await twins({ maxActivations: 1, heartbeatSeconds: 600 });
    const key = (t: Twin) => t.license.key;
    await same(pair, [
      ['activate', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 'device-1', components: [{ kind: 'MAC', value: 'aa' }], client: { appVersion: '1.0.0', platform: 'linux' } } })],
      ['reuse', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 'device-1' } })],
      ['over the cap', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 'device-2' } })],
      ['unknown key', 'Activate', () => ({ input: { key: 'LIC-NOPE-NOPE', fingerprint: 'device-1' } })],
      ['empty fingerprint', 'Activate', (t) => ({ input: { key: key(t), fingerprint: '' } })],
      ['10 KB fingerprint', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 'x'.repeat(10_240) } })],
      ['no input', 'Activate', () => ({})],
      ['input null', 'Activate', () => ({ input: null })],
      ['no fingerprint', 'Activate', (t) => ({ input: { key: key(t) } })],
      ['fingerprint a number', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 42 } })],
      ['unknown field', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 'device-3', owner: 'me' } })],
      ['appVersion a list', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 'device-3', client: { appVersion: ['1'] } } })],
      ['heartbeat', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1', revision: 1, client: { appVersion: '1.0.1' } } })],
      ['heartbeat, stale revision', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1', revision: 0 } })],
      ['heartbeat, revision over 2^31', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1', revision: 2 ** 31 } })],
      ['heartbeat, not activated', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: 'device-2' } })],
      ['heartbeat, revision a string', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1', revision: '1' } })],
      ['heartbeat, revision a fraction', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1', revision: 1.5 } })],
      ['heartbeat, client a string', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1', client: 'linux' } })],
      ['heartbeat, fingerprint null', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: null } })],
      ['heartbeat, key a boolean', 'Heartbeat', () => ({ input: { key: true, fingerprint: 'device-1' } })],
      ['activate, component without value', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 'device-4', components: [{ kind: 'MAC' }] } })],
      ['activate, components an object', 'Activate', (t) => ({ input: { key: key(t), fingerprint: 'device-4', components: { kind: 'MAC', value: 'aa' } } })],
      ['validate', 'ValidateLicense', (t) => ({ input: { key: key(t), fingerprint: 'device-1', version: '1.0.1' } })],
      ['validate, unentitled feature', 'ValidateLicense', (t) => ({ input: { key: key(t), fingerprint: 'device-1', feature: 'sso' } })],
      ['validate, unknown key', 'ValidateLicense', () => ({ input: { key: 'LIC-NOPE-NOPE' } })],
      ['deactivate', 'Deactivate', (t) => ({ input: { key: key(t), fingerprint: 'device-1' } })],
      ['heartbeat after deactivation', 'Heartbeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1' } })],
      ['deactivate again', 'Deactivate', (t) => ({ input: { key: key(t), fingerprint: 'device-1' } })],
    ]);
    expect(pair[0].seen['activate'].activate).toMatchObject({ __typename: 'ActivateSuccess', reused: false });
    expect(pair[0].seen['over the cap'].activate).toMatchObject({ code: 'ACTIVATION_LIMIT_REACHED' });
    expect(pair[0].seen['heartbeat'].heartbeat.__typename).toBe('HeartbeatSuccess');
    await sameFootprint(pair);
  });

  it('floating seats: checkout, renewal, release, refusals', async () => {
    const pair = await twins({ licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 1, leaseSeconds: 60 });
    const key = (t: Twin) => t.license.key;
    const lease = (t: Twin) => t.seen['checkout'].checkoutSeat.id as string;
    await same(pair, [
      ['checkout', 'CheckoutSeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1' } })],
      ['again, same device', 'CheckoutSeat', (t) => ({ input: { key: key(t), fingerprint: 'device-1' } })],
      ['full', 'CheckoutSeat', (t) => ({ input: { key: key(t), fingerprint: 'device-2' } })],
      ['queued', 'CheckoutSeat', (t) => ({ input: { key: key(t), fingerprint: 'device-2', wait: true } })],
      ['renew', 'HeartbeatSeat', (t) => ({ input: { key: key(t), leaseId: lease(t) } })],
      ['another license', 'HeartbeatSeat', (t) => ({ input: { key: key(t), leaseId: lease(t === pair[0] ? pair[1] : pair[0]) } })],
      ['lease id malformed', 'HeartbeatSeat', (t) => ({ input: { key: key(t), leaseId: 'not-an-id' } })],
      ['release', 'ReleaseSeat', (t) => ({ input: { key: key(t), leaseId: lease(t) } })],
      ['renew after release', 'HeartbeatSeat', (t) => ({ input: { key: key(t), leaseId: lease(t) } })],
    ]);
    expect(pair[0].seen['checkout'].checkoutSeat.__typename).toBe('SeatLease');
    expect(pair[0].seen['full'].checkoutSeat).toMatchObject({ code: 'NO_SEATS_AVAILABLE' });
    await sameFootprint(pair);
  });

  it('metering: authorize, commit, record, idempotency, quota and bad quantities', async () => {
    const pair = await twins({ meters: [{ meter: 'api-calls', quota: 10, period: 'NONE' }] }, ['api-calls']);
    const usage = (t: Twin, idempotencyKey: string, quantity: unknown, meter = 'api-calls') => ({ input: { key: t.license.key, meter, quantity, idempotencyKey: `${t.via}-${idempotencyKey}` } });
    const ticket = (t: Twin) => t.seen['authorize'].authorizeUsage.id as string;
    await same(pair, [
      ['authorize', 'AuthorizeUsage', (t) => usage(t, 'a', 3)],
      ['commit', 'CommitUsage', (t) => ({ input: { key: t.license.key, ticketId: ticket(t), quantity: 2 } })],
      ['commit again', 'CommitUsage', (t) => ({ input: { key: t.license.key, ticketId: ticket(t), quantity: 1 } })],
      ['record', 'RecordUsage', (t) => usage(t, 'b', 5)],
      ['record, same key again', 'RecordUsage', (t) => usage(t, 'b', 5)],
      ['record, same key other quantity', 'RecordUsage', (t) => usage(t, 'b', 4)],
      ['over the quota', 'RecordUsage', (t) => usage(t, 'c', 10)],
      ['zero', 'RecordUsage', (t) => usage(t, 'd', 0)],
      ['negative', 'RecordUsage', (t) => usage(t, 'e', -1)],
      ['2^31', 'RecordUsage', (t) => usage(t, 'f', 2 ** 31)],
      ['fraction', 'RecordUsage', (t) => usage(t, 'g', 1.5)],
      ['a string', 'RecordUsage', (t) => usage(t, 'h', '1')],
      ['unknown meter', 'RecordUsage', (t) => usage(t, 'i', 1, 'storage')],
      ['the last unit', 'RecordUsage', (t) => usage(t, 'j', 3)],
    ]);
    expect(pair[0].seen['record'].recordUsage).toMatchObject({ __typename: 'UsageTicket', quantity: 5 });
    expect(pair[0].seen['over the quota'].recordUsage).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    await sameFootprint(pair);
  });

  it('every operation the SDK persists has been compiled', () => {
    const manifest = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../schema/persisted-operations.json'), 'utf8')) as Record<string, string>;
    expect(new Set(s.app.compiledOperations.keys())).toEqual(new Set(Object.values(manifest)));
  });
});
