import { Writable } from 'node:stream';
import { createYoga, createSchema } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { createLogger, keyHint, requestLogPlugin } from './log.ts';

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
});
