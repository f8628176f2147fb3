import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { EventQueue } from './bus.ts';
import { sealerOf } from './chain.ts';
import { tenantEventStream } from './stream.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.close());

describe('EventQueue', () => {
  it('replaces a backlog over its limit by one marker', async () => {
    const q = new EventQueue<number>({ limit: 3, marker: -1 });
    for (let i = 1; i <= 5; i++) q.push(i);
    // 1, 2, 3 queued; 4 overflows: the backlog becomes the marker; 5 is queued after it.
    expect([(await q.next()).value, (await q.next()).value]).toEqual([-1, 5]);
  });

  it('ends a pending next() when closed', async () => {
    const q = new EventQueue<number>();
    const pending = q.next();
    q.close();
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe('a subscriber that falls behind', () => {
  it('catches up from the audit log, in order, without gaps or duplicates', async () => {
    const t = await s.tenant();
    await sealerOf(s.app.deps).seal(t.id);
    const stream = await tenantEventStream(s.app.deps, t.id, { maxBacklog: 3 });
    const first = stream.next(); // starts the stream: it reads the chain head
    for (let i = 0; i < 12; i++) {
      const r = ok(await s.gql(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename } }`, { input: { name: `p${i}`, code: `p${i}` } }, { token: t.token }));
      expect(r.createProduct.__typename).toBe('Product');
    }
    await sealerOf(s.app.deps).seal(t.id);
    const got = [(await first).value!];
    while (got.length < 12) got.push((await stream.next()).value!);
    await stream.return!();
    expect(got.map((e) => e.payload)).toEqual(Array.from({ length: 12 }, (_, i) => ({ code: `p${i}`, name: `p${i}` })));
    expect(got.map((e) => e.seq)).toEqual(Array.from({ length: 12 }, (_, i) => got[0]!.seq + i));
  });
});
