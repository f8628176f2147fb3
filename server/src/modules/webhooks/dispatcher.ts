import { AsyncResource } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { Prisma, type WebhookEndpoint } from '@tessera/db/client';
import type { AppDeps } from '../../context.ts';
import { signatureHeader } from './signature.ts';
import { eventBody, matchesEventType, notifiesOwnDelivery, signingSecrets } from './service.ts';
import { hostOf, isPrivateAddress, publicOnlyLookup } from './targets.ts';
import { logFailure } from '../security/log.ts';
import { sealTenants } from '../audit/chain.ts';
import { DAY_MS, PRUNE_EVERY_MS, pruneDeliveries } from './retention.ts';

/*
 * Nothing is lost: deliveries are made from the audit log, not from the in-memory bus. Each endpoint
 * keeps a cursor on its tenant's audit seq; a pass locks the endpoints that are behind (FOR UPDATE SKIP
 * LOCKED), turns the sealed events after the cursor into WebhookDelivery rows and moves the cursor, in one
 * transaction. seq is gap-free and assigned in commit order (audit/chain.ts), so a cursor never skips an
 * event, and a crash anywhere leaves either no rows and the old cursor, or both.
 * Due deliveries are claimed with one UPDATE over rows locked FOR UPDATE SKIP LOCKED: the claim sets a
 * token and pushes nextAttemptAt past the attempt's timeout, so no other dispatcher (whatever the
 * instance) takes the row while it is in flight; only the holder of the token records the outcome. An
 * instance that dies mid-attempt leaves the row to be retried once the claim lapses (at-least-once, as
 * every webhook system: receivers dedupe by Tessera-Event-Id). The claims held are the attempts in flight:
 * their count per endpoint and per tenant, across instances, bounds what a claim takes (see claim()).
 * The bus wakes the dispatcher when a tenant with endpoints raises an event (low latency); a timer set
 * to the next due retry, at most TICK_MS away, covers everything else (other instances, crashes).
 */

const TICK_MS = 2_000;
const ENDPOINT_BATCH = 20;
const EVENT_BATCH = 500;
/** Attempts in flight per instance. */
const CONCURRENCY = 16;
/**
 * Attempts in flight per endpoint, across every instance: a slow or unreachable receiver with a backlog
 * holds this many places, not all of them, so other endpoints (other tenants) keep being served.
 */
export const PER_ENDPOINT = 4;
/** Attempts in flight per tenant, across every instance: a tenant with many endpoints cannot take every place. */
export const PER_TENANT = 8;
/** Tenants with due deliveries considered by one claim. */
const TENANT_BATCH = 50;
const BODY_EXCERPT = 2_048;
/** Characters PostgreSQL text cannot hold (NUL) or the driver would mangle (an unpaired surrogate). */
const UNSTORABLE = /[\u0000\p{Cs}]/gu;

/**
 * What a receiver answered, as text the database stores: a binary answer (gzip, an image) holds NUL
 * bytes, which PostgreSQL text refuses; unrecorded, the attempt's claim would lapse and the event be
 * sent again at every timeout, for ever.
 */
function storableExcerpt(text: string): string {
  return text.replace(UNSTORABLE, '\uFFFD');
}
/** A claim outlives the attempt's timeout by this much before another dispatcher may retry it. */
const CLAIM_MARGIN_MS = 30_000;
/** The longest wait between two attempts (the default schedule never reaches it: its last wait is about 18 h). */
const MAX_RETRY_DELAY_MS = 24 * 3_600_000;
/** On stop, attempts in flight get this long before they are cut off and handed back. */
const STOP_GRACE_MS = 2_000;

export interface Dispatcher {
  /** Runs a pass soon (coalesced); the services call it after queueing a test or a replay. */
  wake(): void;
  /** One pass now: enqueue from the audit log, claim and start due attempts. Resolves when the pass ends. */
  runOnce(): Promise<void>;
  /** Resolves when no attempt is in flight (tests). */
  idle(): Promise<void>;
  /**
   * Deletes the deliveries over (succeeded or finally failed) before `before` (default: the retention
   * period ago); returns how many. Also runs every PRUNE_EVERY_MS unless TESSERA_WEBHOOK_RETENTION_DAYS is 0.
   */
  prune(before?: Date): Promise<number>;
  stop(): Promise<void>;
}

const dispatchers = new WeakMap<AppDeps, Set<Dispatcher>>();

/** The dispatchers running for this app (the one buildApp started, and any a test started). */
export function dispatchersOf(deps: AppDeps): Dispatcher[] {
  return [...(dispatchers.get(deps) ?? [])];
}

/** Wakes the dispatchers of this app (after a local change), if any run. */
export function wakeDispatchers(deps: AppDeps): void {
  for (const d of dispatchers.get(deps) ?? []) d.wake();
}

export interface AttemptResult {
  ok: boolean;
  status: number | null;
  body: string | null;
  error: string | null;
  durationMs: number;
}

/** One POST of a signed body. A 2xx is success; redirects are not followed. */
export function postWebhook(
  target: string,
  body: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; production: boolean; signal?: AbortSignal },
): Promise<AttemptResult> {
  const started = performance.now();
  const done = (r: Omit<AttemptResult, 'durationMs'>): AttemptResult => ({ ...r, durationMs: Math.round(performance.now() - started) });
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return resolve(done({ ok: false, status: null, body: null, error: 'invalid URL' }));
    }
    // An IP literal is connected to without a lookup, so publicOnlyLookup cannot vet it: it is checked here.
    if (options.production && (url.protocol !== 'https:' || (isIP(hostOf(url)) && isPrivateAddress(hostOf(url))))) {
      return resolve(done({ ok: false, status: null, body: null, error: 'refused: not an https URL to a public address' }));
    }
    const transport = url.protocol === 'https:' ? https : http;
    let settled = false;
    const finish = (r: Omit<AttemptResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(done(r));
    };
    const req = transport.request(url, {
      method: 'POST',
      agent: false,
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body).toString() },
      ...(options.production ? { lookup: publicOnlyLookup } : {}),
      signal: options.signal,
    });
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${options.timeoutMs} ms`)), options.timeoutMs);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      const complete = () => {
        const text = storableExcerpt(Buffer.concat(chunks).subarray(0, BODY_EXCERPT).toString('utf8'));
        finish({ ok: status >= 200 && status < 300, status, body: text, error: status >= 200 && status < 300 ? null : `HTTP ${status}` });
        res.destroy();
      };
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        // Only an excerpt is kept; a receiver streaming a large answer does not hold the attempt open.
        if (size >= BODY_EXCERPT) complete();
      });
      res.on('end', complete);
      res.on('error', complete);
    });
    req.on('error', (err) => finish({ ok: false, status: null, body: null, error: err.message || String(err) }));
    req.end(body);
  });
}

interface Claimed {
  id: string;
  tenantId: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  body: string;
  attempts: number;
}

/**
 * Attempts in flight, on every instance: deliveries claimed and not yet recorded, whose claim has not
 * lapsed (a lapsed one is due again). The "WebhookDelivery_in_flight_idx" partial index holds just these.
 */
function busySql(now: Date): Prisma.Sql {
  return Prisma.sql`SELECT "tenantId", "endpointId" FROM "WebhookDelivery"
     WHERE "claimToken" IS NOT NULL AND status = 'PENDING' AND "nextAttemptAt" > ${now}::timestamp(3)`;
}

export function startDispatcher(deps: AppDeps, options: { tickMs?: number; pruneEveryMs?: number } = {}): Dispatcher {
  const cfg = deps.config.webhooks;
  const tickMs = options.tickMs ?? TICK_MS;
  const prisma = deps.prisma;
  const inFlight = new Map<string, { abort: AbortController; done: Promise<void>; token: string }>();
  const listening = new Map<string, () => void>();
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pruning: Promise<unknown> | undefined;

  const log = (message: string, err: unknown) => {
    if (!stopped) logFailure(deps, `webhooks: ${message}`, err);
  };

  /** Listens on the bus for the tenants that have enabled endpoints. */
  async function refreshTenants() {
    const rows = await prisma.$queryRaw<{ tenantId: string }[]>`SELECT DISTINCT "tenantId"::text AS "tenantId" FROM "WebhookEndpoint" WHERE enabled`;
    const wanted = new Set(rows.map((r) => r.tenantId));
    for (const [tenantId, remove] of listening) {
      if (!wanted.has(tenantId)) {
        remove();
        listening.delete(tenantId);
      }
    }
    for (const tenantId of wanted) {
      if (!listening.has(tenantId)) listening.set(tenantId, deps.bus.listen(tenantId, () => dispatcher.wake(), () => dispatcher.wake()));
    }
  }

  /**
   * The endpoint's own webhook.created audit row: only events written after it are the endpoint's. Its
   * cursor starts at the chain head read when it was created, which may miss events committed just
   * before and sealed just after; their audit ids are lower than this one.
   */
  const starts = new Map<string, bigint>();
  async function startOf(tx: Prisma.TransactionClient, ep: { id: string; tenantId: string }): Promise<bigint> {
    let start = starts.get(ep.id);
    if (start === undefined) {
      const row = await tx.auditEvent.findFirst({
        where: { tenantId: ep.tenantId, type: 'webhook.created', subjectId: ep.id },
        orderBy: { id: 'asc' },
        select: { id: true },
      });
      start = row?.id ?? 0n;
      starts.set(ep.id, start);
    }
    return start;
  }

  /** Turns sealed audit events into deliveries for up to ENDPOINT_BATCH endpoints; returns whether more may remain. */
  async function enqueue(): Promise<boolean> {
    return prisma.$transaction(async (tx) => {
      const endpoints = await tx.$queryRaw<Pick<WebhookEndpoint, 'id' | 'tenantId' | 'cursor' | 'eventTypes'>[]>`
        SELECT e.id::text AS id, e."tenantId"::text AS "tenantId", e.cursor, e."eventTypes"
        FROM "WebhookEndpoint" e JOIN "AuditChainHead" h ON h."tenantId" = e."tenantId"
        WHERE e.enabled AND h.seq > e.cursor
        ORDER BY e.id LIMIT ${ENDPOINT_BATCH}
        FOR UPDATE OF e SKIP LOCKED`;
      if (!endpoints.length) return false;
      const tenants = new Map(
        (await tx.tenant.findMany({ where: { id: { in: [...new Set(endpoints.map((e) => e.tenantId))] } }, select: { id: true, slug: true } })).map((t) => [t.id, t]),
      );
      let full = endpoints.length === ENDPOINT_BATCH;
      const now = new Date();
      for (const ep of endpoints) {
        const tenant = tenants.get(ep.tenantId);
        if (!tenant) continue;
        const events = await tx.auditEvent.findMany({
          where: { tenantId: ep.tenantId, seq: { gt: BigInt(ep.cursor) } },
          orderBy: { seq: 'asc' },
          take: EVENT_BATCH,
        });
        if (!events.length) continue;
        if (events.length === EVENT_BATCH) full = true;
        const after = await startOf(tx, ep);
        const wanted = events.filter((e) => e.id > after && matchesEventType(ep.eventTypes, e.type) && !notifiesOwnDelivery(e, ep.id));
        if (wanted.length) {
          await tx.webhookDelivery.createMany({
            data: wanted.map((e) => ({
              tenantId: ep.tenantId,
              endpointId: ep.id,
              eventId: e.id.toString(),
              eventSeq: e.seq,
              eventType: e.type,
              body: eventBody(e, tenant),
              nextAttemptAt: now,
              createdAt: now,
            })),
          });
        }
        await tx.webhookEndpoint.update({ where: { id: ep.id }, data: { cursor: events[events.length - 1]!.seq! } });
      }
      return full;
    });
  }

  /**
   * Claims up to `limit` due deliveries, within PER_ENDPOINT attempts in flight per endpoint and PER_TENANT
   * per tenant, counted in the database over every instance's claims (claimToken set, lease not lapsed).
   * Counting then claiming is a read-then-write, so claims of one tenant are serialised: a transaction takes
   * the tenants' advisory locks first (pg_try_: a tenant another instance is claiming for is left to it),
   * and only then counts and claims, in a statement whose snapshot (READ COMMITTED) sees every claim
   * committed by the lock's previous holder. Per endpoint its oldest due ones (an index walk per endpoint),
   * per tenant the earliest due of those, then the earliest due overall.
   */
  async function claim(limit: number): Promise<{ token: string; rows: Claimed[] }> {
    const token = randomUUID();
    const now = new Date();
    const leaseUntil = new Date(now.getTime() + cfg.timeoutMs + CLAIM_MARGIN_MS);
    const rows = await prisma.$transaction(async (tx) => {
      // Tenants with a due delivery on an endpoint that has room, in a tenant that has room (one at its
      // caps would otherwise fill the batch every pass and keep the others out).
      const due = await tx.$queryRaw<{ tenantId: string }[]>`
        WITH busy AS (${busySql(now)})
        SELECT e."tenantId"::text AS "tenantId" FROM "WebhookEndpoint" e
         CROSS JOIN LATERAL (
           SELECT y."nextAttemptAt" FROM "WebhookDelivery" y
            WHERE y."endpointId" = e.id AND y.status = 'PENDING' AND y."nextAttemptAt" <= ${now}::timestamp(3)
            ORDER BY y."createdAt" LIMIT 1
         ) x
         WHERE e.enabled
           AND e.id NOT IN (SELECT "endpointId" FROM busy GROUP BY "endpointId" HAVING count(*) >= ${PER_ENDPOINT})
           AND e."tenantId" NOT IN (SELECT "tenantId" FROM busy GROUP BY "tenantId" HAVING count(*) >= ${PER_TENANT})
         GROUP BY e."tenantId" ORDER BY min(x."nextAttemptAt") LIMIT ${TENANT_BATCH}`;
      if (!due.length) return [];
      const locked = await tx.$queryRaw<{ tenantId: string }[]>`
        SELECT t::text AS "tenantId" FROM unnest(${due.map((d) => d.tenantId)}::uuid[]) AS t
         WHERE pg_try_advisory_xact_lock(hashtextextended('webhook-claim:' || t::text, 0))`;
      if (!locked.length) return [];
      const tenants = locked.map((t) => t.tenantId);
      return tx.$queryRaw<Claimed[]>`
        WITH busy AS (${busySql(now)}),
        per_endpoint AS (SELECT "endpointId", count(*)::int AS n FROM busy GROUP BY "endpointId"),
        per_tenant AS (SELECT "tenantId", count(*)::int AS n FROM busy GROUP BY "tenantId"),
        candidates AS (
          SELECT x.id, x."nextAttemptAt", COALESCE(pt.n, 0) AS busy,
                 row_number() OVER (PARTITION BY e."tenantId" ORDER BY x."nextAttemptAt", x."createdAt") AS rn
            FROM "WebhookEndpoint" e
            LEFT JOIN per_endpoint pe ON pe."endpointId" = e.id
            LEFT JOIN per_tenant pt ON pt."tenantId" = e."tenantId"
            CROSS JOIN LATERAL (
              SELECT y.id, y."nextAttemptAt", y."createdAt" FROM "WebhookDelivery" y
               WHERE y."endpointId" = e.id AND y.status = 'PENDING' AND y."nextAttemptAt" <= ${now}::timestamp(3)
               ORDER BY y."createdAt" LIMIT greatest(${PER_ENDPOINT}::int - COALESCE(pe.n, 0), 0)
               FOR UPDATE SKIP LOCKED
            ) x
           WHERE e.enabled AND e."tenantId" = ANY(${tenants}::uuid[])
        )
        UPDATE "WebhookDelivery" d
        SET attempts = d.attempts + 1, "claimToken" = ${token}::uuid, "nextAttemptAt" = ${leaseUntil}::timestamp(3), "lastAttemptAt" = ${now}::timestamp(3)
        WHERE d.id IN (
          SELECT c.id FROM candidates c WHERE c.rn <= ${PER_TENANT}::int - c.busy ORDER BY c."nextAttemptAt" LIMIT ${limit}
        )
        RETURNING d.id::text AS id, d."tenantId"::text AS "tenantId", d."endpointId"::text AS "endpointId", d."eventId", d."eventType", d.body, d.attempts`;
    });
    return { token, rows };
  }

  /**
   * The delay before attempt n + 1, after n failed ones: base * 3^(n-1), +-20%, at most a day. Uncapped,
   * a large TESSERA_WEBHOOK_MAX_ATTEMPTS reached delays past any date (3^34 ms): the outcome could not be
   * recorded and the claim's lapse resent the event every timeout until the last attempt.
   */
  function backoffMs(failed: number): number {
    return Math.round(Math.min(cfg.retryBaseMs * 3 ** (failed - 1) * (0.8 + Math.random() * 0.4), MAX_RETRY_DELAY_MS));
  }

  /**
   * The endpoint's run of failures, moved by a delivery that is over: a success ends it, a FAILED one
   * (after its last attempt) adds one, and the one that brings it to TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES
   * disables the endpoint, with its webhook.auto_disabled audit row. One UPDATE of the endpoint row, in
   * the statement that records the outcome: concurrent outcomes (any instance) queue on that row's lock
   * and each counts on the value the previous one committed, so the run is exact and the endpoint is
   * disabled once. Only an enabled endpoint counts: what ends while it is disabled leaves the count as
   * it was (re-enabling resets it). Only an attempt made to the endpoint's current URL counts: changing
   * the URL starts a new run, which one made to the old address and ending after the change must not
   * move. A success on a count of 0 writes nothing, so successes do not queue.
   */
  function endpointRun(status: 'SUCCEEDED' | 'FAILED', now: Date, url: string): Prisma.Sql {
    if (status === 'SUCCEEDED') {
      return Prisma.sql`
        UPDATE "WebhookEndpoint" ep SET "consecutiveFailures" = 0 FROM d
         WHERE ep.id = d."endpointId" AND ep.enabled AND ep.url = ${url} AND ep."consecutiveFailures" <> 0
        RETURNING ep.id, ep."tenantId", ep.url, ep.enabled, ep."consecutiveFailures", d.id AS "deliveryId"`;
    }
    const limit = cfg.disableAfterFailures;
    const reached = Prisma.sql`(${limit}::int > 0 AND ep."consecutiveFailures" + 1 >= ${limit}::int)`;
    return Prisma.sql`
      UPDATE "WebhookEndpoint" ep SET
        "consecutiveFailures" = ep."consecutiveFailures" + 1,
        enabled = NOT ${reached},
        "disabledReason" = CASE WHEN ${reached} THEN 'DELIVERY_FAILURES'::"WebhookDisabledReason" END,
        "disabledAt" = CASE WHEN ${reached} THEN ${now}::timestamp(3) END,
        "updatedAt" = CASE WHEN ${reached} THEN ${now}::timestamp(3) ELSE ep."updatedAt" END
        FROM d
       WHERE ep.id = d."endpointId" AND ep.enabled AND ep.url = ${url}
      RETURNING ep.id, ep."tenantId", ep.url, ep.enabled, ep."consecutiveFailures", d.id AS "deliveryId"`;
  }

  /** Records an attempt's outcome; `url` is where it was made. */
  async function record(row: Claimed, token: string, startedAt: Date, r: AttemptResult, url: string) {
    const last = row.attempts >= cfg.maxAttempts;
    const status = r.ok ? 'SUCCEEDED' : last ? 'FAILED' : 'PENDING';
    const next = status === 'PENDING' ? new Date(Date.now() + backoffMs(row.attempts)) : null;
    const now = new Date();
    const completedAt = status === 'PENDING' ? null : now;
    const error = r.error ? storableExcerpt(r.error.slice(0, 500)) : null;
    // Only the claim's holder writes: a claim that lapsed and was taken over records nothing here.
    const disabled = await prisma.$queryRaw<{ tenantId: string }[]>`
      WITH d AS (
        UPDATE "WebhookDelivery" SET status = ${status}::"WebhookDeliveryStatus", "nextAttemptAt" = ${next}::timestamp(3), "claimToken" = NULL,
          "lastResponseStatus" = ${r.status}::int, "lastResponseBody" = ${r.body}, "lastError" = ${error},
          "lastDurationMs" = ${r.durationMs}::int, "completedAt" = ${completedAt}::timestamp(3)
        WHERE id = ${row.id}::uuid AND "claimToken" = ${token}::uuid
        RETURNING id, "tenantId", "endpointId", attempts
      ), attempt AS (
        INSERT INTO "WebhookAttempt" ("deliveryId", "tenantId", number, "startedAt", "durationMs", succeeded, "responseStatus", "responseBody", error)
        SELECT id, "tenantId", attempts, ${startedAt}::timestamp(3), ${r.durationMs}::int, ${r.ok}, ${r.status}::int, ${r.body}, ${error} FROM d
      )${status === 'PENDING' ? Prisma.sql`
      SELECT NULL::text AS "tenantId" WHERE false` : Prisma.sql`, e AS (${endpointRun(status, now, url)}
      ), audit AS (
        INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", payload, "requestId")
        SELECT "tenantId", 'webhook.auto_disabled', 'system', 'webhooks', 'WebhookEndpoint', id::text,
          jsonb_build_object('url', url, 'consecutiveFailures', "consecutiveFailures", 'disableAfterFailures', ${cfg.disableAfterFailures}::int, 'lastDeliveryId', "deliveryId"::text),
          'webhook-dispatcher'
        FROM e WHERE NOT enabled
        RETURNING "tenantId"
      )
      SELECT "tenantId"::text AS "tenantId" FROM audit`}`;
    if (disabled.length) sealTenants(deps, disabled.map((x) => x.tenantId));
  }

  /** Hands a claimed delivery back untried (shutdown): due now, the attempt not counted. */
  async function release(id: string, token: string) {
    await prisma.$executeRaw`
      UPDATE "WebhookDelivery" SET attempts = attempts - 1, "claimToken" = NULL, "nextAttemptAt" = ${new Date()}::timestamp(3)
      WHERE id = ${id}::uuid AND "claimToken" = ${token}::uuid`;
  }

  function attempt(row: Claimed, endpoint: WebhookEndpoint | undefined, token: string) {
    const abort = new AbortController();
    const done = (async () => {
      const startedAt = new Date();
      let result: AttemptResult;
      if (!endpoint) return; // deleted meanwhile: its deliveries went with it
      try {
        const secrets = signingSecrets(deps, endpoint);
        result = await postWebhook(
          endpoint.url,
          row.body,
          {
            'user-agent': 'Tessera-Webhooks/1',
            'tessera-event-id': row.eventId,
            'tessera-event-type': row.eventType,
            'tessera-delivery-id': row.id,
            'tessera-attempt': String(row.attempts),
            'tessera-signature': signatureHeader(secrets, row.body),
          },
          { timeoutMs: cfg.timeoutMs, production: deps.config.production, signal: abort.signal },
        );
      } catch (err) {
        result = { ok: false, status: null, body: null, error: (err as Error).message, durationMs: 0 };
      }
      if (abort.signal.aborted) return release(row.id, token);
      await record(row, token, startedAt, result, endpoint.url);
    })()
      .catch((err) => log(`recording delivery ${row.id} failed`, err))
      .finally(() => {
        inFlight.delete(row.id);
        dispatcher.wake();
      });
    inFlight.set(row.id, { abort, done, token });
  }

  async function pass() {
    await refreshTenants();
    for (let i = 0; i < 20 && !stopped && (await enqueue()); i++);
    const room = CONCURRENCY - inFlight.size;
    if (room > 0 && !stopped) {
      const { token, rows } = await claim(room);
      if (rows.length) {
        const endpoints = new Map(
          (await prisma.webhookEndpoint.findMany({ where: { id: { in: [...new Set(rows.map((r) => r.endpointId))] } } })).map((e) => [e.id, e]),
        );
        for (const row of rows) attempt(row, endpoints.get(row.endpointId), token);
      }
    }
  }

  /** Sleeps until the next due retry, or TICK_MS, whichever comes first. */
  async function schedule() {
    if (stopped) return;
    let wait = tickMs;
    try {
      // Endpoints and tenants with all their places taken (by any instance) are left out: the end of an
      // attempt here wakes the dispatcher, one elsewhere is seen at the next tick.
      const [next] = await prisma.$queryRaw<{ at: Date | null }[]>`
        WITH busy AS (${busySql(new Date())})
        SELECT min(d."nextAttemptAt") AS at FROM "WebhookDelivery" d JOIN "WebhookEndpoint" e ON e.id = d."endpointId"
        WHERE d.status = 'PENDING' AND e.enabled
          AND d."endpointId" NOT IN (SELECT "endpointId" FROM busy GROUP BY "endpointId" HAVING count(*) >= ${PER_ENDPOINT})
          AND d."tenantId" NOT IN (SELECT "tenantId" FROM busy GROUP BY "tenantId" HAVING count(*) >= ${PER_TENANT})`;
      if (next?.at) wait = Math.max(0, Math.min(tickMs, new Date(next.at).getTime() - Date.now()));
    } catch (err) {
      log('scheduling failed', err);
    }
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => dispatcher.wake(), wait);
    timer.unref();
  }

  // Bound to the context the dispatcher started in: a pass woken from inside a request (a bus event, a
  // replay) must not run as part of that request (its request-scoped logging and SQL accounting).
  const loop = AsyncResource.bind(async () => {
    do {
      again = false;
      try {
        await pass();
      } catch (err) {
        log('pass failed', err);
      }
    } while (again && !stopped);
    await schedule();
  });

  /** A retention pass, unless one runs already here; a failure is logged, the next pass tries again. */
  function prunePass() {
    if (pruning || stopped || cfg.retentionDays === 0) return;
    const before = new Date(Date.now() - cfg.retentionDays * DAY_MS);
    pruning = pruneDeliveries(deps, before)
      .then((count) => {
        if (count > 0) deps.logger?.info({ count, before: before.toISOString() }, 'webhooks: deliveries past retention deleted');
      })
      .catch((err) => log('retention pass failed', err))
      .finally(() => (pruning = undefined));
  }
  // The first pass waits a little: a start is busy enough with migrations and the audit sweep.
  const firstPrune = setTimeout(prunePass, Math.min(options.pruneEveryMs ?? PRUNE_EVERY_MS, 30_000));
  const pruneTimer = setInterval(prunePass, options.pruneEveryMs ?? PRUNE_EVERY_MS);
  firstPrune.unref();
  pruneTimer.unref();

  const dispatcher: Dispatcher = {
    wake() {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      clearTimeout(timer);
      running = loop().finally(() => (running = null));
    },
    async runOnce() {
      while (running) await running;
      dispatcher.wake();
      while (running) await running;
    },
    prune(before = new Date(Date.now() - cfg.retentionDays * DAY_MS)) {
      return pruneDeliveries(deps, before);
    },
    async idle() {
      while (inFlight.size || running) {
        await Promise.all([...inFlight.values()].map((f) => f.done));
        await running;
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      clearTimeout(firstPrune);
      clearInterval(pruneTimer);
      dispatchers.get(deps)?.delete(dispatcher);
      for (const remove of listening.values()) remove();
      listening.clear();
      await running;
      await pruning;
      const pending = [...inFlight.values()];
      const grace = new Promise((r) => setTimeout(r, STOP_GRACE_MS).unref());
      await Promise.race([Promise.all(pending.map((p) => p.done)), grace]);
      for (const p of inFlight.values()) p.abort.abort();
      await Promise.all([...inFlight.values()].map((p) => p.done));
    },
  };

  let set = dispatchers.get(deps);
  if (!set) dispatchers.set(deps, (set = new Set()));
  set.add(dispatcher);
  dispatcher.wake();
  return dispatcher;
}
