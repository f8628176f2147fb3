import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type JITCache, useGraphQlJit } from '@envelop/graphql-jit';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import type { PrismaClient } from '@tessera/db/database';
import type { ExecutionArgs } from 'graphql';
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

export interface PersistedOperations {
  plugins: Plugin[];
  /** The persisted operations compiled by graphql-jit so far, by document text. */
  compiled: ReadonlyMap<string, unknown>;
}

/**
 * Trusted documents: the SDK sends only the SHA-256 of its operations, resolved from
 * schema/persisted-operations.json (generated from the SDK). In production, callers without valid
 * credentials (license-key clients) may run nothing else; signed-in users and API tokens keep
 * arbitrary queries. Elsewhere any caller may send full documents (GraphiQL, tests).
 *
 * Operations sent by hash (the SDK's hot path: activate, heartbeat, validate, seats, usage) run
 * compiled by graphql-jit, a few percent more requests per second; full documents run on graphql-js,
 * so arbitrary queries never grow the compiled cache. persisted.test.ts holds the two executors to
 * the same answers and errors for every persisted operation.
 */
export function persistedOperations(prisma: PrismaClient, production: boolean): PersistedOperations {
  const store = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Record<string, string>;
  // Batching is off, so a request resolved from the store carries exactly one operation.
  const byHash = new WeakSet<Request>();
  const compiled = new Map<string, Parameters<JITCache['set']>[1]>();
  const sentByHash = (args: ExecutionArgs) => byHash.has((args.contextValue as { request: Request }).request);
  const before = new WeakMap<ExecutionArgs, (args: ExecutionArgs) => unknown>();
  const plugins: Plugin[] = [
    usePersistedOperations({
      getPersistedOperation: (hash, request) => {
        const document = store[hash] ?? null;
        if (document) byHash.add(request);
        return document;
      },
      allowArbitraryOperations: production ? async (request) => (await actorFor(prisma, request)).kind !== 'anonymous' : true,
      skipDocumentValidation: false,
    }),
    {
      // Remembers the executor in place before graphql-jit's, for the calls it refuses (below).
      onExecute({ args, executeFn }) {
        if (sentByHash(args)) before.set(args, executeFn);
      },
    },
    useGraphQlJit({}, { enableIf: sentByHash, cache: compiled }) as Plugin,
    {
      // graphql-jit coerces variables its own way: other messages, and a 200 where yoga answers a
      // graphql-js coercion error with 400. When it refuses the variables (an answer without data: it
      // ran nothing), the call goes again to the executor before it, which gives the SDK the one error
      // format whichever way it sent the operation. Variables it accepts are not coerced twice.
      onExecute({ args, executeFn, setExecuteFn }) {
        const fallback = before.get(args);
        if (!fallback) return;
        setExecuteFn((a) => {
          const settle = (result: unknown) => (isRefusal(result) ? fallback(a) : result);
          const result = executeFn(a);
          return (result instanceof Promise ? result.then(settle) : settle(result)) as ReturnType<typeof executeFn>;
        });
      },
    },
  ];
  return { plugins, compiled };
}

/** An answer of graphql-jit that ran nothing: errors only (its variables failed to coerce). */
function isRefusal(result: unknown): boolean {
  return !!result && typeof result === 'object' && !(Symbol.asyncIterator in result) && !('data' in result) && 'errors' in result;
}
