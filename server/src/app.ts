import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { migrate, openDatabase, type Database } from '@tessera/db/database';
import { execute, type ExecutionArgs, GraphQLError, subscribe } from 'graphql';
import type { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Config } from './config.ts';
import type { Actor, AppDeps, Context, HttpContext } from './context.ts';
import { createBus, type EventBus } from './modules/audit/bus.ts';
import { sealerOf } from './modules/audit/chain.ts';
import { auditExportPlugin, EXPORT_PATH } from './modules/audit/export.ts';
import { startReclamation } from './modules/activation/service.ts';
import { JWKS_PATH, jwksPlugin } from './modules/signing/jwks.ts';
import { signerFor } from './modules/signing/service.ts';
import { authenticate, bearerOf, cookieValue, SESSION_COOKIE } from './modules/tenants/service.ts';
import { schema } from './schema.ts';

export interface App {
  deps: AppDeps;
  yoga: YogaServerInstance<{ req?: IncomingMessage }, Context>;
  /** Not listening yet: main.ts (or a test) calls listen(). */
  server: Server;
  stop(): Promise<void>;
}

export interface BuildOptions {
  config: Config;
  /** An open database; otherwise one is opened from the config. */
  db?: Database;
  /** The event bus; otherwise Redis when config.redisUrl is set, in-memory if not. */
  bus?: EventBus;
  /** Prefix of the bus topics (Redis channels), to separate deployments or test runs on one Redis. */
  busPrefix?: string;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;
/** How often each instance looks for devices past their inactivity limit (safe with N instances). */
const RECLAIM_INTERVAL_MS = 30_000;

/** Per-request response additions (cookies, request id), keyed by the request they answer. */
const responseExtras = new WeakMap<Request, { requestId: string; cookies: string[] }>();

const responseHeaders: Plugin = {
  onResponse({ request, response }) {
    const extras = responseExtras.get(request);
    if (!extras) return;
    response.headers.set('x-request-id', extras.requestId);
    for (const c of extras.cookies) response.headers.append('set-cookie', c);
  },
};

export async function openConfiguredDatabase(config: Config): Promise<Database> {
  return config.databaseUrl
    ? openDatabase({ url: config.databaseUrl })
    : openDatabase({ dataDir: `${config.dataDir}/pg` });
}

export async function buildApp(options: BuildOptions): Promise<App> {
  const { config } = options;
  const db = options.db ?? (await openConfiguredDatabase(config));
  await migrate(db);
  const bus = options.bus ?? createBus(config.redisUrl, options.busPrefix);
  const deps: AppDeps = { config, db, prisma: db.prisma, bus };
  // Resolves the master key now, so a bad TESSERA_MASTER_KEY fails the start, not the first activation.
  signerFor(deps);
  const stopReclamation = startReclamation(deps, RECLAIM_INTERVAL_MS);
  // Chains audit rows committed while no instance could (a crash between commit and seal), then keeps sweeping.
  const sealer = sealerOf(deps);
  void sealer.sweep().catch((err) => console.error('audit: initial sweep failed:', (err as Error).message));
  sealer.startSweeping();

  const yoga = createYoga<{ req?: IncomingMessage }, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: !config.production,
    maskedErrors: true,
    plugins: [responseHeaders, jwksPlugin(deps), auditExportPlugin(deps)],
    context: async ({ request, ...rest }): Promise<Context> => {
      const socket = rest as unknown as { actor?: Actor; requestId?: string };
      if (socket.actor) {
        return { transport: 'ws', app: deps, prisma: deps.prisma, actor: socket.actor, requestId: socket.requestId ?? randomUUID() };
      }
      const given = request.headers.get('x-request-id');
      const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
      const cookies: string[] = [];
      responseExtras.set(request, { requestId, cookies });
      const actor = await authenticate(
        deps.prisma,
        bearerOf(request.headers.get('authorization')),
        cookieValue(request.headers.get('cookie'), SESSION_COOKIE),
      );
      const ctx: HttpContext = { transport: 'http', app: deps, prisma: deps.prisma, actor, requestId, request, cookies };
      return ctx;
    },
  });

  const server = createServer(async (req, res) => {
    const url = req.url ?? '/';
    if (url === '/health' || url.startsWith('/health?')) {
      try {
        await db.sql.query('SELECT 1');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', database: db.kind }));
      } catch {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'unavailable' }));
      }
      return;
    }
    if (url.startsWith(JWKS_PATH)) return yoga.handle(req, res);
    if (url.startsWith('/graphql') || url.startsWith(EXPORT_PATH)) return yoga.handle(req, res);
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
  });

  const wss = new WebSocketServer({ server, path: '/graphql' });
  const wsServer = useServer<Record<string, unknown> | undefined, { actor?: Actor; bearer?: string | null }>(
    {
      // onSubscribe puts yoga's enveloped execute/subscribe on rootValue.
      execute: (args: ExecutionArgs) => ((args.rootValue as { execute?: typeof execute })?.execute ?? execute)(args),
      subscribe: (args: ExecutionArgs) => ((args.rootValue as { subscribe?: typeof subscribe })?.subscribe ?? subscribe)(args),
      // Credentials are checked on connect (a bad token closes the socket with 4403) and again on every
      // subscribe, so a token revoked since connecting starts nothing new.
      onConnect: async (ctx) => {
        const raw = ctx.connectionParams?.authorization;
        const bearer = bearerOf(typeof raw === 'string' ? raw : null);
        const actor = await authenticate(deps.prisma, bearer, null);
        if (actor.kind === 'anonymous') return false;
        ctx.extra.actor = actor;
        ctx.extra.bearer = bearer;
        return true;
      },
      onSubscribe: async (ctx, _id, params) => {
        const actor = await authenticate(deps.prisma, ctx.extra.bearer ?? null, null);
        if (actor.kind === 'anonymous') {
          return [new GraphQLError('Authentication required', { extensions: { code: 'UNAUTHENTICATED' } })];
        }
        ctx.extra.actor = actor;
        const { schema: s, execute: exec, subscribe: sub, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          actor: ctx.extra.actor,
          requestId: randomUUID(),
        });
        const args = {
          schema: s,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute: exec, subscribe: sub },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
  );

  let stopped = false;
  return {
    deps,
    yoga,
    server,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Stop accepting, tell socket clients we are going away, let in-flight HTTP requests finish.
      for (const client of wss.clients) client.close(1001 as CloseCode, 'Server shutting down');
      await wsServer.dispose();
      await new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await sealer.stop();
      if (!options.bus) await bus.close();
      await stopReclamation();
      if (!options.db) await db.close();
    },
  };
}
