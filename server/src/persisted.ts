import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type JITCache, useGraphQlJit } from '@envelop/graphql-jit';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import type { PrismaClient } from '@tessera/db/database';
import { type DefinitionNode, type DocumentNode, type ExecutionArgs, Kind, Lexer, parse, print, Source, TokenKind } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Actor } from './context.ts';
import { authenticate, bearerOf, cookieValue, SESSION_COOKIE } from './modules/tenants/service.ts';

const MANIFEST = path.resolve(import.meta.dirname, '../../schema/persisted-operations.json');
const CONSOLE_MANIFEST = path.resolve(import.meta.dirname, '../../schema/console-operations.json');

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
 * credentials (license-key clients, the console before signing in) may run known operations only:
 * the SDK's, by hash or as text, and the console's, as the text it sends (schema/console-operations.json,
 * generated from web/src/lib/graphql/operations: its app shell asks who is signed in and signs in
 * before a session exists, and any of its pages may call with a session that ended, to be answered
 * UNAUTHENTICATED). A document is known when it is one of those once formatting, comments and the
 * order of its definitions are set aside (canonicalDocument). Signed-in users and API tokens keep
 * arbitrary queries. Elsewhere any caller may send full documents (GraphiQL, tests). graphql-ws
 * accepts no socket without credentials, so this concerns HTTP (POST, GET and SSE) only.
 *
 * Operations sent by hash (the SDK's hot path: activate, heartbeat, validate, seats, usage) run
 * compiled by graphql-jit, a few percent more requests per second; full documents run on graphql-js,
 * so arbitrary queries never grow the compiled cache. persisted.test.ts holds the two executors to
 * the same answers and errors for every persisted operation.
 */
export function persistedOperations(prisma: PrismaClient, production: boolean): PersistedOperations {
  const store = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Record<string, string>;
  const consoleOperations = JSON.parse(readFileSync(CONSOLE_MANIFEST, 'utf8')) as Record<string, string>;
  const known = production ? knownDocuments([...Object.values(store), ...Object.values(consoleOperations)]) : () => true;
  // The text of a request's document, for the allow-list check (which the plugin hands the request only).
  const sentText = new WeakMap<Request, string>();
  // Batching is off, so a request resolved from the store carries exactly one operation.
  const byHash = new WeakSet<Request>();
  const compiled = new Map<string, Parameters<JITCache['set']>[1]>();
  const sentByHash = (args: ExecutionArgs) => byHash.has((args.contextValue as { request: Request }).request);
  const before = new WeakMap<ExecutionArgs, (args: ExecutionArgs) => unknown>();
  const plugins: Plugin[] = [
    {
      onParams({ params, request }) {
        if (production && typeof params.query === 'string') sentText.set(request, params.query);
      },
    },
    usePersistedOperations({
      getPersistedOperation: (hash, request) => {
        const document = store[hash] ?? null;
        if (document) byHash.add(request);
        return document;
      },
      allowArbitraryOperations: production ? async (request) => (await actorFor(prisma, request)).kind !== 'anonymous' || known(sentText.get(request)) : true,
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

/**
 * A document's text with formatting, comments and the order of its definitions set aside: the
 * operations by name, then the fragments by name, printed by graphql-js. Two printings of one
 * document (the console's client library prints its own way) give the same text.
 */
export function canonicalDocument(document: string | DocumentNode, maxTokens?: number): string {
  const ast = typeof document === 'string' ? parse(document, { noLocation: true, maxTokens }) : document;
  const rank = (d: DefinitionNode) => `${d.kind === Kind.OPERATION_DEFINITION ? 0 : 1}:${'name' in d ? (d.name?.value ?? '') : ''}`;
  return print({ ...ast, definitions: [...ast.definitions].sort((a, b) => rank(a).localeCompare(rank(b))) });
}

/** Whether a document's text is one of `documents`; what has more tokens than any of them is not parsed at all. */
function knownDocuments(documents: string[]): (text: string | undefined) => boolean {
  const canonical = new Set(documents.map((d) => canonicalDocument(d)));
  const maxTokens = Math.max(...documents.map(tokenCount));
  return (text) => {
    if (text === undefined) return false;
    try {
      return canonical.has(canonicalDocument(text, maxTokens));
    } catch {
      return false; // not a document, or longer than any known one
    }
  };
}

function tokenCount(text: string): number {
  const lexer = new Lexer(new Source(text));
  let count = 0;
  while (lexer.advance().kind !== TokenKind.EOF) count++;
  return count;
}

/** An answer of graphql-jit that ran nothing: errors only (its variables failed to coerce). */
function isRefusal(result: unknown): boolean {
  return !!result && typeof result === 'object' && !(Symbol.asyncIterator in result) && !('data' in result) && 'errors' in result;
}
