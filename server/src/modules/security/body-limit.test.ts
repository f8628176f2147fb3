import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../test/harness.ts';
import { MAX_REQUEST_BYTES } from './body-limit.ts';

let s: TestServer;
let port: number;
beforeAll(async () => {
  s = await startTestServer();
  await new Promise<void>((resolve) => s.app.server.listen(0, '127.0.0.1', resolve));
  port = (s.app.server.address() as AddressInfo).port;
});
afterAll(() => s.close());

const NOOP = JSON.stringify({ query: 'mutation { noop }' });

/** A POST to /graphql over a real socket; `chunks` are sent one by one (chunked when no content-length is given). */
function post(headers: Record<string, string | number>, chunks: (string | Buffer)[]): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    // A connection of its own: a request cut short must not leave bytes on a socket the next one reuses.
    const req = http.request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    // The server may answer (and close) before the whole body is sent: that is the point.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    let i = 0;
    const next = () => {
      if (i === chunks.length) return req.end();
      if (req.destroyed) return;
      req.write(chunks[i++], next);
    };
    next();
  });
}

describe('request body limit', () => {
  it('answers a request of declared length, and one sent in chunks', async () => {
    const declared = await post({ 'content-length': Buffer.byteLength(NOOP) }, [NOOP]);
    expect(declared).toMatchObject({ status: 200, body: { data: { noop: true } } });
    const chunked = await post({ 'transfer-encoding': 'chunked' }, [NOOP.slice(0, 10), NOOP.slice(10)]);
    expect(chunked).toMatchObject({ status: 200, body: { data: { noop: true } } });
  });

  it('refuses a declared length over the limit with 413 before the body arrives', async () => {
    const r = await post({ 'content-length': MAX_REQUEST_BYTES + 1 }, ['{"query":"']);
    expect(r.status).toBe(413);
    expect(r.body.errors[0].extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');
  });

  it('cuts off a chunked body once it passes the limit', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    const chunks: (string | Buffer)[] = ['{"query":"mutation { noop }","variables":{"x":"'];
    for (let i = 0; i * chunk.length <= MAX_REQUEST_BYTES; i++) chunks.push(chunk);
    chunks.push('"}}');
    const r = await post({ 'transfer-encoding': 'chunked' }, chunks);
    expect(r.status).toBe(413);
    expect(r.body.errors[0].extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');
  });

  it('refuses a malformed content-length with 400 (over fetch: Node itself refuses one on the socket)', async () => {
    const r = await s.app.yoga.fetch('http://tessera.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '12, 12' },
      body: NOOP,
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as any).errors[0].extensions.code).toBe('BAD_REQUEST');
  });
});
