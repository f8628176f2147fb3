import { readFileSync } from 'node:fs';
import path from 'node:path';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import type { PrismaClient } from '@tessera/db/database';
import type { Plugin } from 'graphql-yoga';
import type { Actor } from './context.ts';
import { authenticate, bearerOf, cookieValue, SESSION_COOKIE } from './modules/tenants/service.ts';

const MANIFEST = path.resolve(import.meta.dirname, '../../schema/persisted-operations.json');

/** Each request is authenticated once, whoever asks first (the allow-list check or the context). */
const actors = new WeakMap<Request, Promise<Actor>>();
export function actorFor(prisma: PrismaClient, request: Request): Promise<Actor> {
  let actor = actors.get(request);
  if (!actor) {
    actor = authenticate(prisma, bearerOf(request.headers.get('authorization')), cookieValue(request.headers.get('cookie'), SESSION_COOKIE));
    actors.set(request, actor);
  }
  return actor;
}

/**
 * Trusted documents: the SDK sends only the SHA-256 of its operations, resolved from
 * schema/persisted-operations.json (generated from the SDK). In production, callers without valid
 * credentials (license-key clients) may run nothing else; signed-in users and API tokens keep
 * arbitrary queries. Elsewhere any caller may send full documents (GraphiQL, tests).
 */
export function persistedOperations(prisma: PrismaClient, production: boolean): Plugin {
  const store = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Record<string, string>;
  return usePersistedOperations({
    getPersistedOperation: (hash) => store[hash] ?? null,
    allowArbitraryOperations: production ? async (request) => (await actorFor(prisma, request)).kind !== 'anonymous' : true,
    skipDocumentValidation: false,
  });
}
