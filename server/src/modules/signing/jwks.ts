import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { AppDeps } from '../../context.ts';
import { routePlugin } from '../security/routes.ts';
import { signerFor } from './service.ts';

export const JWKS_PATH = '/.well-known/jwks.json';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/** `GET /.well-known/jwks.json?tenant=<slug>`: the tenant's public signing keys, current and retired. */
export async function jwksResponse(app: AppDeps, request: Request): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return json(405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
  const slug = new URL(request.url).searchParams.get('tenant');
  if (!slug || !/^[a-z0-9-]{2,40}$/.test(slug)) return json(400, { error: 'give the tenant slug: ?tenant=<slug>' });
  const jwks = await signerFor(app).jwks(slug);
  if (!jwks) return json(404, { error: 'unknown tenant' });
  // Short caching: a rotated key must reach verifiers soon (they refetch on an unknown kid anyway).
  return new Response(JSON.stringify(jwks), {
    status: 200,
    headers: { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=60', 'access-control-allow-origin': '*' },
  });
}

/** Serves the JWKS through yoga, so in-process tests (yoga.fetch) and the HTTP server share one path. */
export function jwksPlugin(app: AppDeps, logger: Logger): Plugin {
  return routePlugin(logger, JWKS_PATH, ({ request }) => jwksResponse(app, request));
}
