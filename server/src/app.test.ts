import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test/harness.ts';

// What the listening server answers beside /graphql: the console's pages, whatever their names.
let s: TestServer;
let base = '';

beforeAll(async () => {
  s = await startTestServer();
  await new Promise<void>((resolve) => s.app.server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
});
afterAll(() => s.close());

/** Status, type and body of a GET, to compare a path with a known console page. */
async function get(path: string) {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('console routes', () => {
  it('serves the console pages named like the routes beside /graphql (a reload of /offline), and those routes still', async () => {
    // The console answer (its index.html, or the note that it is not built) is the same for every page.
    const page = await get('/licenses');
    for (const path of ['/offline', '/offline?key=LIC-0000', '/audit-log', '/audit-log?type=license.created']) {
      expect(await get(path), path).toEqual(page);
    }
    // The API's own routes are not the console: unauthenticated, they say so.
    expect((await get('/offline/bundle?activationId=x')).status).toBe(401);
    expect((await get('/audit/export?format=csv')).status).toBe(401);
  });
});
