import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import { migrate, openDatabase, type Database } from '@tessera/db/database';
import { type DocumentNode, execute, type ExecutionArgs, GraphQLError, subscribe } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { Config } from './config.ts';
import type { Actor, AppDeps, Context, HttpContext } from './context.ts';
import { createBus, type EventBus } from './modules/audit/bus.ts';
import { sealerOf } from './modules/audit/chain.ts';
import { auditExportPlugin, EXPORT_PATH } from './modules/audit/export.ts';
import { stopCompliance, watchCompliance } from './modules/compliance/service.ts';
import { startComplianceSweeps } from './modules/compliance/sweeps.ts';
import { startReclamation } from './modules/activation/service.ts';
import { startHeartbeatPruning } from './modules/activation/retention.ts';
import { JWKS_PATH, jwksPlugin } from './modules/signing/jwks.ts';
import { startSweeps } from './modules/leases/sweeps.ts';
import { checkMasterKey, signerFor } from './modules/signing/service.ts';
import { authenticate, bearerOf, cookieValue, SESSION_COOKIE } from './modules/tenants/service.ts';
import { actorFor, type PersistedOperations, persistedOperations } from './persisted.ts';
import { BUNDLE_PATH, offlineBundlePlugin } from './modules/offline/bundle.ts';
import { schema } from './schema.ts';
import { startDispatcher } from './modules/webhooks/dispatcher.ts';
import { createSecurity } from './modules/security/security.ts';
import { createLogger } from './modules/security/log.ts';
import { socketOriginAllowed } from './modules/security/csrf.ts';
import { socketGuardOf } from './modules/security/sockets.ts';
import { clientIp } from './modules/security/ratelimit.ts';
import { startMaintenance } from './modules/system/maintenance.ts';

export interface App {
  deps: AppDeps;
  yoga: YogaServerInstance<{ req?: IncomingMessage }, Context>;
  /** Not listening yet: main.ts (or a test) calls listen(). */
  server: Server;
  /** The SDK operations graphql-jit has compiled (see persisted.ts). */
  compiledOperations: PersistedOperations['compiled'];
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
  /** The structured log; otherwise one on stdout at the configured level. */
  logger?: Logger;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;
/** How often each instance looks for devices past their inactivity limit (safe with N instances). */
const RECLAIM_INTERVAL_MS = 30_000;
/** RFC 6455's "Try Again Later": graphql-ws clients reconnect after it (they give up after 1011 and 4500). */
const TRY_AGAIN_LATER = 1013 as CloseCode;
/** How long stop() waits for in-flight HTTP requests before closing the remaining connections. */
const DRAIN_MS = 10_000;

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

/**
 * Paths the API owns; everything else is the admin console. The routes beside /graphql by their full
 * path: the console has pages named like them (/offline, /audit-log) that must load on a reload too.
 */
const API_PREFIXES = ['/graphql', '/health', '/.well-known', EXPORT_PATH, BUNDLE_PATH];
function isApiPath(url: string): boolean {
  const pathname = url.split('?')[0] ?? url;
  return API_PREFIXES.some((p) => pathname === p || pathname.startsWith(`${p}/`));
}

const CONSOLE_DIR = path.resolve(import.meta.dirname, '../../web/build');
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

/** The built admin console (web/build): files as they are, index.html for every client-side route. */
async function serveConsole(req: IncomingMessage, res: ServerResponse, url: string) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(url, 'http://console').pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  const file = path.join(CONSOLE_DIR, path.normalize(pathname));
  if (!file.startsWith(CONSOLE_DIR)) {
    res.writeHead(404).end();
    return;
  }
  const found = await stat(file).catch(() => null);
  if (found?.isFile()) return sendFile(req, res, file, found.size);
  const index = path.join(CONSOLE_DIR, 'index.html');
  const fallback = await stat(index).catch(() => null);
  // A missing asset is a 404; any other path is a console route the SPA resolves itself.
  if (fallback?.isFile() && !path.extname(pathname)) return sendFile(req, res, index, fallback.size);
  if (!fallback) {
    res
      .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      .end('The admin console is not built. Run `pnpm --filter @tessera/web build` (or `pnpm build`) and reload.\n');
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found\n');
}

function sendFile(req: IncomingMessage, res: ServerResponse, file: string, size: number) {
  const immutable = file.includes(`${path.sep}_app${path.sep}immutable${path.sep}`);
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'content-length': size,
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file).pipe(res);
}

export async function openConfiguredDatabase(config: Config): Promise<Database> {
  return config.databaseUrl
    ? openDatabase({ url: config.databaseUrl, poolSize: config.dbPoolSize, connectTimeoutMs: config.dbConnectTimeoutMs, queryTimeoutMs: config.dbQueryTimeoutMs })
    : openDatabase({ dataDir: `${config.dataDir}/pg` });
}

export async function buildApp(options: BuildOptions): Promise<App> {
  const { config } = options;
  const db = options.db ?? (await openConfiguredDatabase(config));
  await migrate(db);
  // The structured log, made first: the event bus reports a Redis outage in it.
  const logger = options.logger ?? createLogger(config.security.logLevel);
  const bus = options.bus ?? createBus(config.redisUrl, options.busPrefix, logger);
  const deps: AppDeps = { config, db, prisma: db.prisma, bus };
  // Resolves the master key now, so a bad TESSERA_MASTER_KEY, or one that cannot open the keys and secrets
  // the database holds (another instance's), fails the start, not every activation after it.
  signerFor(deps);
  await checkMasterKey(deps);
  // Issue 9 hardening: structured logs, CSRF, GraphQL limits, rate limits, retryable outage errors.
  const security = createSecurity(deps, { busPrefix: options.busPrefix, logger });
  // Background jobs log through it too.
  deps.logger = security.logger;
  const stopReclamation = startReclamation(deps, RECLAIM_INTERVAL_MS);
  // The heartbeat time series is kept for TESSERA_HEARTBEAT_RETENTION_DAYS (safe on N instances).
  const pruning = startHeartbeatPruning(deps, config.heartbeatRetentionDays, {
    pruned: (count, before) => security.logger.info({ count, before: before.toISOString() }, 'heartbeat samples past retention deleted'),
    failed: (err) => security.logger.error({ err: err.message }, 'heartbeat retention pass failed'),
  });
  // Statistics and vacuuming where no autovacuum runs (PGlite; PostgreSQL with autovacuum off).
  const maintenance = await startMaintenance(db, config.dbMaintenanceMs, (err) =>
    security.logger.error({ err: err.message }, 'database maintenance failed'),
  );
  if (maintenance.active && db.kind === 'postgres') {
    security.logger.warn('autovacuum is off on this PostgreSQL server: Tessera vacuums and analyzes its grown tables itself');
  }
  // Chains audit rows committed while no instance could (a crash between commit and seal), then keeps sweeping.
  const sealer = sealerOf(deps);
  void sealer.sweep().catch((err) => security.logger.error({ err: (err as Error).message }, 'audit: initial sweep failed'));
  sealer.startSweeping();
  watchCompliance(deps);
  // Expiring-soon, expired and heartbeat-timeout alerts (safe on N instances).
  const complianceSweeps = startComplianceSweeps(deps, config.complianceSweepMs);
  // Floating seats and usage tickets: expire lapsed leases and reservations (safe on N instances).
  const sweeps = startSweeps(deps);
  // Webhooks: deliveries made from the sealed audit log, claimed with SKIP LOCKED (safe on N instances).
  const webhooks = startDispatcher(deps);

  const persisted = persistedOperations(deps.prisma, config.production);
  const yoga = createYoga<{ req?: IncomingMessage }, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: !config.production,
    ...security.yogaOptions,
    plugins: [responseHeaders, ...security.plugins, ...persisted.plugins, jwksPlugin(deps, security.logger), auditExportPlugin(deps, security.logger), offlineBundlePlugin(deps, security.logger)],
    context: async ({ request, ...rest }): Promise<Context> => {
      const socket = rest as unknown as { actor?: Actor; requestId?: string; clientIp?: string | null };
      if (socket.actor) {
        return { transport: 'ws', app: deps, prisma: deps.prisma, actor: socket.actor, requestId: socket.requestId ?? randomUUID(), clientIp: socket.clientIp ?? null };
      }
      const given = request.headers.get('x-request-id');
      const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
      const cookies: string[] = [];
      responseExtras.set(request, { requestId, cookies });
      const actor = await actorFor(deps.prisma, request);
      const ctx: HttpContext = { transport: 'http', app: deps, prisma: deps.prisma, actor, requestId, request, cookies };
      return ctx;
    },
  });

  const server = createServer(async (req, res) => {
    const url = req.url ?? '/';
    if (url === '/health' || url.startsWith('/health?')) {
      // 503 only when the database does not answer: without Redis this instance still serves every request
      // (its own live feeds included); only events between instances wait, which 'degraded' tells monitoring.
      const eventBus = bus.state();
      try {
        await db.sql.query('SELECT 1');
        const status = eventBus.connected ? 'ok' : 'degraded';
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status, database: db.kind, eventBus }));
      } catch {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'unavailable', eventBus }));
      }
      return;
    }
    if (url.startsWith(JWKS_PATH)) return yoga.handle(req, res);
    if (url.startsWith('/graphql') || url.startsWith(EXPORT_PATH) || url.startsWith(BUNDLE_PATH)) return yoga.handle(req, res);
    if (isApiPath(url)) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
      return;
    }
    return serveConsole(req, res, url);
  });

  // Upgrades are handed over here rather than through `{ server }`: ws would also re-emit the HTTP server's
  // own errors (a port already taken) on wss, where graphql-ws prints them with a stack trace as its own.
  const wss = new WebSocketServer({ noServer: true, path: '/graphql' });
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  const sockets = socketGuardOf(deps, (err) => security.logger.error({ err: err.message }, 'sockets: credential re-check failed'));
  // Revocations and sign-outs close sockets at once (through the bus); expiries wait for this re-check.
  sockets.start(config.socketRecheckMs);
  /**
   * What graphql-ws sends for an operation that failed before it ran, masked and logged as yoga does over
   * HTTP (security/availability.ts): a GraphQLError of the client's own making (syntax, a document limit)
   * as it is, a database outage as the retryable SERVICE_UNAVAILABLE, anything else as "Unexpected error.".
   */
  const operationErrors = (err: unknown): GraphQLError[] => {
    const masked = security.yogaOptions.maskedErrors.maskError(err, 'Unexpected error.');
    return [masked instanceof GraphQLError ? masked : new GraphQLError(masked.message)];
  };
  /** The code yoga gives the same error over HTTP, so clients tell a bad document from the rest. */
  const coded = (e: GraphQLError, code: string) =>
    e.extensions.code ? e : new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, originalError: e.originalError, extensions: { ...e.extensions, code } });
  const wsServer = useServer<Record<string, unknown> | undefined, { actor?: Actor; bearer?: string | null; session?: string | null; clientIp?: string | null }>(
    {
      // onSubscribe puts yoga's enveloped execute/subscribe on rootValue.
      execute: (args: ExecutionArgs) => ((args.rootValue as { execute?: typeof execute })?.execute ?? execute)(args),
      subscribe: (args: ExecutionArgs) => ((args.rootValue as { subscribe?: typeof subscribe })?.subscribe ?? subscribe)(args),
      // Credentials are checked on connect (a bad token or session closes the socket with 4403) and again
      // on every subscribe, so a token revoked or a session signed out since connecting starts nothing new.
      // Without connectionParams.authorization the socket is the console's: its session cookie came with
      // the upgrade, which counts only from an origin allowed to use cookies. Once connected, the socket
      // closes (4403) when its credential is revoked, signed out or expires (security/sockets.ts).
      onConnect: async (ctx) => {
        try {
          const raw = ctx.connectionParams?.authorization;
          let bearer: string | null = null;
          let session: string | null = null;
          if (raw == null || raw === '') {
            const { headers } = ctx.extra.request;
            if (!socketOriginAllowed(headers.origin, headers.host, config.security.corsOrigins)) return false;
            session = cookieValue(headers.cookie ?? null, SESSION_COOKIE);
          } else {
            bearer = bearerOf(typeof raw === 'string' ? raw : null);
          }
          const actor = await authenticate(deps.prisma, bearer, session);
          if (actor.kind === 'anonymous') return false;
          ctx.extra.actor = actor;
          ctx.extra.bearer = bearer;
          ctx.extra.session = session;
          // Client operations over the socket meet the same per-IP limits as over HTTP.
          const { headers, socket } = ctx.extra.request;
          ctx.extra.clientIp = clientIp(headers['x-forwarded-for'], socket.remoteAddress, config.security.trustProxy);
          sockets.track(ctx.extra.socket, actor, { bearer, session });
          return true;
        } catch (err) {
          // Thrown, graphql-ws would print it (console.error) and close with 4500, which its clients never
          // retry. The error goes to the log instead; a database that cannot be reached or is too busy closes
          // with 1013 (Try Again Later), which graphql-ws clients (the console's too) retry, anything else
          // with 4500. graphql-ws's own close for `false` (4403) then finds the socket closing and does nothing.
          const [masked] = operationErrors(err);
          if (masked!.extensions.code === 'SERVICE_UNAVAILABLE') ctx.extra.socket.close(TRY_AGAIN_LATER, masked!.message);
          else ctx.extra.socket.close(CloseCode.InternalServerError, 'Internal server error');
          return false;
        }
      },
      onSubscribe: async (ctx, _id, params) => {
        // A bad document (syntax, document limits), an outage or anything unexpected answers this operation
        // with an error message; thrown, it would close the socket (4500) with every other operation on it.
        try {
          const actor = await authenticate(deps.prisma, ctx.extra.bearer ?? null, ctx.extra.session ?? null);
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
            clientIp: ctx.extra.clientIp,
            requestId: randomUUID(),
          });
          let document: DocumentNode;
          try {
            document = parse(params.query);
          } catch (err) {
            if (err instanceof GraphQLError) return [coded(err, 'GRAPHQL_PARSE_FAILED')];
            throw err;
          }
          const errors: readonly GraphQLError[] = validate(s, document);
          if (errors.length) return errors.map((e) => coded(e, 'GRAPHQL_VALIDATION_FAILED'));
          return {
            schema: s,
            operationName: params.operationName,
            document,
            variableValues: params.variables,
            contextValue: await contextFactory(),
            rootValue: { execute: exec, subscribe: sub },
          };
        } catch (err) {
          return operationErrors(err);
        }
      },
    },
    wss,
  );

  let stopped = false;
  return {
    deps,
    yoga,
    server,
    compiledOperations: persisted.compiled,
    async stop() {
      if (stopped) return;
      stopped = true;
      await sockets.stop();
      // Stop accepting, tell socket clients we are going away, let in-flight HTTP requests finish.
      for (const client of wss.clients) client.close(1001 as CloseCode, 'Server shutting down');
      await wsServer.dispose();
      await new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
        // In-flight requests get DRAIN_MS to finish; open SSE streams and stragglers are cut after that.
        setTimeout(() => server.closeAllConnections(), DRAIN_MS).unref();
      });
      await sweeps.stop();
      await webhooks.stop();
      await complianceSweeps.stop();
      // The last seals may start compliance evaluations: wait for those after the sealer, before the
      // database closes. What they write is sealed by the next sweep (of this or another instance).
      await sealer.stop();
      await stopCompliance(deps);
      if (!options.bus) await bus.close();
      await stopReclamation();
      await pruning.stop();
      await maintenance.stop();
      await security.close();
      if (!options.db) await db.close();
    },
  };
}
