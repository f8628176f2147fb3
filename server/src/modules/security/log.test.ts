import { Writable } from 'node:stream';
import { createYoga, createSchema } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { loggingMaskError } from './availability.ts';
import { createLogger, keyHint, logFailure, requestLogPlugin } from './log.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger('debug', stream) };
}

describe('structured logs', () => {
  it('log one line per request with request id, operation, duration and status, and no credentials', async () => {
    const { lines, logger } = capture();
    const yoga = createYoga({
      schema: createSchema({ typeDefs: 'type Query { hello(key: String): String }', resolvers: { Query: { hello: () => 'hi' } } }),
      plugins: [
        { onResponse: ({ response }) => void response.headers.set('x-request-id', 'req-42') },
        requestLogPlugin(logger),
      ],
    });
    await yoga.fetch('http://x/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer tsr_secret_token', cookie: 'tessera_session=tss_secret' },
      body: JSON.stringify({ query: 'query Hello($key: String) { hello(key: $key) }', operationName: 'Hello', variables: { key: 'LIC-AAAA-BBBBBBBBBBBB-CCCC' } }),
    });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ msg: 'request', requestId: 'req-42', operation: 'Hello', status: 200, method: 'POST', path: '/graphql' });
    expect(typeof entry.ms).toBe('number');
    expect(lines[0]).not.toMatch(/secret|LIC-AAAA-BBBB/);
    expect(entry.level).toBe(20); // debug: a fast success
    await yoga.fetch('http://x/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 30, status: 400 });
  });

  it('redacts credentials wherever a caller logs them', () => {
    const { lines, logger } = capture();
    logger.info(
      { authorization: 'Bearer abc', headers: { authorization: 'Bearer abc', cookie: 'c=1' }, input: { password: 'pw', key: 'LIC-1' }, token: 't', variables: { key: 'k' } },
      'oops',
    );
    expect(lines[0]).not.toMatch(/Bearer abc|"pw"|LIC-1|"t"|c=1/);
    expect(keyHint('LIC-AAAA-BBBBBBBBBBBB-CCCC')).toBe('LIC-AAAA…');
  });

  it('log the error behind a masked answer, without the values its message quotes', async () => {
    const { lines, logger } = capture();
    const yoga = createYoga({
      schema: createSchema({
        typeDefs: 'type Query { boom: String, down: String, rawDown: String, busy: String, misuse: String }',
        resolvers: {
          Query: {
            boom: () => {
              throw Object.assign(new Error('Invalid `prisma.license.findFirst()` invocation:\n  where: { key: "LIC-AAAA-BBBBBBBBBBBB-CCCC" }'), { code: 'P2009' });
            },
            down: () => {
              throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
            },
            // A raw query says it only in its message.
            rawDown: () => {
              throw Object.assign(new Error("\nInvalid `prisma.$queryRaw()` invocation:\n\n\nRaw query failed. Code: `N/A`. Message: `Can't reach database server at db.internal:5432`"), { code: 'P2010' });
            },
            // Prisma's words for a transaction that outlived its limit, and for one used after it ended.
            busy: () => {
              throw Object.assign(
                new Error('\nInvalid `prisma.auditEvent.createMany()` invocation:\n\n\nTransaction API error: Transaction already closed: A query cannot be executed on an expired transaction. The timeout for this transaction was 5000 ms, however 6120 ms passed since the start of the transaction.'),
                { code: 'P2028' },
              );
            },
            misuse: () => {
              throw Object.assign(new Error('Transaction API error: Transaction not found.'), { code: 'P2028' });
            },
          },
        },
      }),
      maskedErrors: { maskError: loggingMaskError(logger) },
      logging: false,
    });
    const res = await yoga.fetch('http://x/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ boom }' }) });
    expect((await res.json()).errors[0]).toMatchObject({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 50, msg: 'request failed with an unexpected error', path: 'boom', error: { type: 'Error', code: 'P2009', message: 'Invalid `prisma.license.findFirst()` invocation:' } });
    expect(entry.error.stack).toMatch(/^\s+at /);
    expect(lines[0]).not.toMatch(/LIC-AAAA/);

    await yoga.fetch('http://x/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ down }' }) });
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 40, path: 'down', error: { code: 'ECONNREFUSED' } });

    const ask = async (field: string) =>
      yoga.fetch('http://x/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `{ ${field} }` }) });
    const busy = await ask('busy');
    expect(busy.status).toBe(503);
    expect((await busy.json()).errors[0]).toMatchObject({ message: 'The service is busy; retry shortly', extensions: { code: 'SERVICE_UNAVAILABLE', retryable: true } });
    expect(JSON.parse(lines[2]!)).toMatchObject({
      level: 40,
      msg: 'request failed: the database was too busy to finish it in time',
      error: { code: 'P2028', message: 'Invalid `prisma.auditEvent.createMany()` invocation:' },
    });
    expect((await (await ask('misuse')).json()).errors[0]).toMatchObject({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(JSON.parse(lines[3]!)).toMatchObject({ level: 50, error: { code: 'P2028' } });
    const rawDown = await ask('rawDown');
    expect(rawDown.status).toBe(503);
    expect((await rawDown.json()).errors[0]).toMatchObject({ extensions: { code: 'SERVICE_UNAVAILABLE', retryable: true } });
    expect(JSON.parse(lines[4]!)).toMatchObject({ level: 40, msg: 'request failed: the database is unavailable', error: { code: 'P2010' } });
  });

  it('log background failures (sweeps, sealer, webhooks) as structured lines: an outage at warn, the rest at error', () => {
    const { lines, logger } = capture();
    const outage = Object.assign(new Error("\nInvalid `prisma.lease.updateMany()` invocation:\n\nCan't reach database server at 10.0.0.5:5432"), { code: 'P1001' });
    logFailure({ logger }, 'leases/metering: sweep failed', outage);
    logFailure({ logger }, 'audit: sealing failed', new TypeError('boom'), { tenantId: 't-1' });
    expect(lines.map((l) => JSON.parse(l))).toMatchObject([
      { level: 40, msg: 'leases/metering: sweep failed', error: { code: 'P1001', message: 'Invalid `prisma.lease.updateMany()` invocation:' } },
      { level: 50, msg: 'audit: sealing failed', tenantId: 't-1', error: { type: 'TypeError', message: 'boom' } },
    ]);
  });
});
