import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { SESSION_COOKIE } from '../tenants/service.ts';

/** The header a cookie-session caller may send to mark a "simple" POST as deliberate (yoga's name). */
export const CSRF_HEADER = 'x-graphql-yoga-csrf';
const SIMPLE_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'];

/**
 * CSRF prevention for cookie sessions. A browser sends a cross-site request without a CORS
 * preflight only as a "simple" request: GET, or a POST with a form or text content type. GETs cannot
 * run mutations (yoga refuses them), so the one way to change state with a victim's cookie would be
 * a simple POST: those are refused unless they carry the CSRF header, which a simple request cannot.
 * The console's urql client POSTs application/json (and GETs queries), so it needs no change; bearer
 * tokens are not sent ambiently by browsers and are not affected. CORS never allows credentials for
 * origins outside TESSERA_CORS_ORIGINS, so a preflighted cross-site JSON POST carries no cookie.
 */
export function csrfPlugin(): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (request.method !== 'POST') return;
      const cookie = request.headers.get('cookie');
      if (!cookie || !cookie.includes(`${SESSION_COOKIE}=`)) return;
      const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      const simple = type === '' || SIMPLE_TYPES.includes(type);
      if (!simple || request.headers.has(CSRF_HEADER)) return;
      const error = new GraphQLError('Cross-site request refused: send application/json or the x-graphql-yoga-csrf header', {
        extensions: { code: 'CSRF_REJECTED' },
      });
      endResponse(
        new fetchAPI.Response(JSON.stringify({ errors: [error.toJSON()] }), {
          status: 403,
          headers: { 'content-type': 'application/json' },
        }),
      );
    },
  };
}

/** CORS: any origin may call with a bearer token; only the configured origins may send cookies. */
export function corsOptions(origins: string[]) {
  return (request: Request) => {
    const origin = request.headers.get('origin');
    if (origin && origins.includes(origin)) return { origin: [origin], credentials: true };
    return { origin: ['*'], credentials: false };
  };
}

/**
 * Cross-site WebSocket hijacking: browsers send cookies on a WebSocket upgrade from any site and
 * CORS does not apply to it, so a cookie-authenticated socket is accepted only from the server's own
 * origin (the Host the browser connected to) or a configured console origin. Origin is set by the
 * browser and cannot be forged by a page; bearer-token sockets carry no ambient credential and skip this.
 */
export function socketOriginAllowed(origin: string | undefined, host: string | undefined, allowed: string[]): boolean {
  if (!origin) return false;
  if (allowed.includes(origin)) return true;
  try {
    return !!host && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
