import { Writable } from 'node:stream';
import { createSchema, createYoga } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { createLogger } from './log.ts';
import { routePlugin } from './routes.ts';

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

// What the database layer throws: Prisma's messages quote their arguments after the first line.
const unexpected = () => Object.assign(new Error('Invalid `prisma.license.findFirst()` invocation:\n  where: { key: "LIC-AAAA-BBBBBBBBBBBB-CCCC" }'), { code: 'P2009' });
const unreachable = () =>
  Object.assign(new Error("\nInvalid `prisma.$queryRaw()` invocation:\n\n\nRaw query failed. Code: `N/A`. Message: `Can't reach database server at db.internal:5432`"), { code: 'P2010' });

describe('routes beside /graphql', () => {
  function app(handle: Parameters<typeof routePlugin>[2]) {
    const { lines, logger } = capture();
    const yoga = createYoga({ schema: createSchema({ typeDefs: 'type Query { a: Int }' }), logging: false, plugins: [routePlugin(logger, '/r', handle)] });
    return { lines, get: () => yoga.fetch('http://x/r') };
  }

  it('answer an unexpected failure with a masked 500 and log it without the arguments it quotes', async () => {
    const { lines, get } = app(async () => {
      throw unexpected();
    });
    const res = await get();
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
    expect(text).not.toMatch(/prisma|LIC-|\bat /i);
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 50, route: '/r', msg: 'request failed with an unexpected error', error: { code: 'P2009', message: 'Invalid `prisma.license.findFirst()` invocation:' } });
    expect(entry.error.stack).toMatch(/^\s+at /);
    expect(lines[0]).not.toMatch(/LIC-AAAA/);
  });

  it('answer a database outage, also as a raw query reports it, with a retryable 503', async () => {
    const { lines, get } = app(async () => {
      throw unreachable();
    });
    const res = await get();
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('2');
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ errors: [{ message: 'The service is briefly unavailable; retry shortly', extensions: { code: 'SERVICE_UNAVAILABLE', retryable: true } }] });
    expect(text).not.toMatch(/db\.internal|prisma/i);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, route: '/r', msg: 'request failed: the database is unavailable', error: { code: 'P2010' } });
  });

  it('fail a stream that breaks after its headers: the reader gets an error, not a short body that looks complete', async () => {
    const { lines, get } = app(async ({ failStream }) => {
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (!sent) {
            sent = true;
            controller.enqueue(new TextEncoder().encode('first batch\n'));
          } else failStream(controller, unreachable());
        },
      });
      return new Response(body, { status: 200 });
    });
    const res = await get();
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, route: '/r', msg: 'streamed response cut short: request failed: the database is unavailable' });
    expect(lines[0]).not.toMatch(/db\.internal/);
  });
});
