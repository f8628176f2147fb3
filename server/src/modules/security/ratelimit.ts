import { hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import { type ExecutionResult, GraphQLError, type GraphQLField, type GraphQLSchema, isInputObjectType, getNamedType } from 'graphql';
import { wrapErrorIfMatches } from '@pothos/plugin-errors';
import type { Plugin } from 'graphql-yoga';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Actor, AppDeps, Context } from '../../context.ts';
import { LicensingError } from '../../errors.ts';
import { parseKey } from '../licenses/keys.ts';
import type { SecurityConfig } from './config.ts';
import { json } from './routes.ts';

/**
 * Abuse limits, in memory or (with REDIS_URL) shared by every instance through Redis.
 *
 * Client operations (those authenticated by a license key in `input.key`) count against the key and
 * the caller's IP before anything is looked up, so a known and an unknown key meet exactly the same
 * limits and answers. Keys the server does not know also count against the IP's much smaller
 * unknown-key budget: that, not the per-key limit, is what stops key guessing. Failed sign-ins count
 * per account (tenant + email, whether it exists or not) and per IP.
 *
 * Budgets that count only failures (unknown keys, failed sign-ins) take their point before the slow
 * part runs and give it back when it did not fail: counting afterwards would let every concurrent
 * (or aliased) attempt pass the check before any of them is counted. A client call that finds the
 * unknown-key budget held only by lookups still running waits for them (placeForLookup) instead of
 * being refused with a key that may well be valid.
 */
export interface RateLimits {
  key: RateLimiterAbstract | null;
  ip: RateLimiterAbstract | null;
  /** Unknown-key lookups per address: those answered, and those still running (taken before, given back when the key is known). */
  unknownKeys: RateLimiterAbstract | null;
  /** Unknown-key answers per address alone: tells a budget used up from one held by lookups in flight. */
  unknownKeysAnswered: RateLimiterAbstract | null;
  admin: RateLimiterAbstract | null;
  signInAccount: RateLimiterAbstract | null;
  signInIp: RateLimiterAbstract | null;
  trustProxy: number;
  close(): Promise<void>;
}

const MINUTE = 60;
const QUARTER_HOUR = 15 * 60;

export function createRateLimits(config: SecurityConfig, redisUrl?: string, prefix = 'tessera'): RateLimits {
  // While Redis is away, or accepts connections and never answers, a command gives up after 500 ms at
  // most and the in-memory insurance limiter answers. Without the limit each request waited for the next
  // reconnection attempt to fail (up to 2 s), or forever. The event bus logs the outage (audit/bus.ts).
  const redis = redisUrl ? new Redis(redisUrl, { maxRetriesPerRequest: 1, commandTimeout: 500 }) : null;
  redis?.on('error', () => {}); // the in-memory insurance limiter takes over while Redis is away
  const make = (name: string, points: number, duration: number): RateLimiterAbstract | null => {
    if (points <= 0) return null;
    const keyPrefix = `${prefix}:rl:${name}`;
    const memory = new RateLimiterMemory({ keyPrefix, points, duration });
    if (!redis) return memory;
    return new RateLimiterRedis({ storeClient: redis, useRedisPackage: false, keyPrefix, points, duration, insuranceLimiter: memory });
  };
  return {
    key: make('key', config.keyPerMinute, MINUTE),
    ip: make('ip', config.ipPerMinute, MINUTE),
    unknownKeys: make('unknown', config.ipUnknownKeysPerMinute, MINUTE),
    unknownKeysAnswered: make('unknown-answered', config.ipUnknownKeysPerMinute, MINUTE),
    admin: make('admin', config.adminPerMinute, MINUTE),
    signInAccount: make('signin-account', config.signInAccountFailures, QUARTER_HOUR),
    signInIp: make('signin-ip', config.signInIpFailures, QUARTER_HOUR),
    trustProxy: config.trustProxy,
    async close() {
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

const digest = (s: string) => hash('sha256', s, 'base64url').slice(0, 22);

/** Seconds to wait when `id` has used up `limiter`, after taking `points` from it; null while within it. */
async function take(limiter: RateLimiterAbstract | null, id: string, points = 1): Promise<number | null> {
  if (!limiter) return null;
  try {
    await limiter.consume(id, points);
    return null;
  } catch (err) {
    if (err instanceof RateLimiterRes) return Math.max(1, Math.ceil(err.msBeforeNext / 1000));
    return null; // the store failed and no insurance answered: fail open rather than lock everyone out
  }
}

/** Seconds to wait when `id` has already used up `limiter` (without taking anything); null otherwise. */
async function exhausted(limiter: RateLimiterAbstract | null, id: string): Promise<number | null> {
  if (!limiter) return null;
  const res = await limiter.get(id).catch(() => null);
  if (!res || res.consumedPoints < limiter.points) return null;
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}

/** How long a call waits for lookups in flight to free the unknown-key budget before it is refused. */
const LOOKUP_WAIT_MS = 3000;

/**
 * A place for one more lookup in the address's unknown-key budget, after `first` (the answer of the
 * take made with the other limits) refused one. Refused because earlier answers used the budget up:
 * the call is refused. Refused only because lookups still running hold the rest (a site behind one
 * address starting many devices at once, all with known keys): it waits for them to finish, as
 * known keys give their places back at once, rather than answering RATE_LIMITED to a valid key.
 */
async function placeForLookup(limits: RateLimits, ip: string, first: number): Promise<number | null> {
  let wait = first;
  const deadline = Date.now() + LOOKUP_WAIT_MS;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    const usedUp = await exhausted(limits.unknownKeysAnswered, ip);
    if (usedUp !== null) return usedUp;
    if (Date.now() + pause > deadline) return wait;
    await new Promise((resolve) => setTimeout(resolve, pause));
    const again = await take(limits.unknownKeys, ip);
    if (again === null) return null;
    void giveBack(limits.unknownKeys, ip); // a refused take counts its point too
    wait = again;
  }
}

/**
 * Returns a point that take() took. A give-back that lands after the window rolled over would start the
 * next window below zero (a free point per give-back): each give-back that leaves the count below zero
 * takes its own point again, and only that one. (Evening out the whole deficit seen would overdraw the
 * window: the calls of one batched statement end together, and sixteen give-backs each seeing the
 * deficits of those before them added 120 points, a minute without lookups for the address.)
 */
export async function giveBack(limiter: RateLimiterAbstract | null, id: string): Promise<void> {
  if (!limiter) return;
  try {
    const res = await limiter.reward(id, 1);
    if (res.consumedPoints < 0) await limiter.penalty(id, 1);
  } catch {
    // The store failed and no insurance answered; the window's expiry returns the point.
  }
}

/**
 * The client address: the socket's, or the one the configured number of trusted proxies saw. A request
 * with fewer forwarded hops than trusted proxies did not pass through all of them, and its first hops
 * are whatever the client wrote: the socket's address counts then.
 */
export function clientIp(forwardedFor: string | string[] | null | undefined, socketAddress: string | null | undefined, trustProxy: number): string | null {
  if (trustProxy > 0 && forwardedFor) {
    const hops = String(forwardedFor).split(',').map((s) => s.trim()).filter(Boolean);
    const ip = hops.length >= trustProxy ? hops[hops.length - trustProxy] : undefined;
    if (ip) return ip;
  }
  return socketAddress ?? null;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing dotted IPv4 part converted). */
function ipv6Groups(ip: string): number[] {
  let text = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => parseInt(g, 16));
}

/**
 * What the per-IP limits count by: an IPv6 address per /64 (one host or site is usually given a whole
 * /64, so counting per address would give it billions of budgets); IPv4, also when mapped into IPv6
 * (`::ffff:a.b.c.d`, as a dual-stack socket reports it), per address.
 */
export function ipBucket(ip: string): string {
  const bare = ip.replace(/%.*$/, '');
  if (!isIPv6(bare)) return ip;
  const g = ipv6Groups(bare);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join('.');
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
}

interface AppState {
  limits: RateLimits;
  /** Each HTTP request's per-IP bucket. */
  ips: WeakMap<Request, string>;
  retryAfter: WeakMap<Request, number>;
}
const perApp = new WeakMap<AppDeps, AppState>();
const WRAPPED = Symbol.for('tessera.security.rateLimited');

type Resolver = NonNullable<GraphQLField<unknown, Context>['resolve']>;

/** Root fields whose `input` carries a license key and that need no credentials: the SDK's operations. */
export function clientFields(schema: GraphQLSchema): GraphQLField<unknown, Context>[] {
  const fields: GraphQLField<unknown, Context>[] = [];
  for (const type of [schema.getQueryType(), schema.getMutationType()]) {
    for (const field of Object.values(type?.getFields() ?? {})) {
      const input = field.args.find((a) => a.name === 'input');
      const named = input && getNamedType(input.type);
      const scoped = (field.extensions as { pothosOptions?: { authScopes?: unknown } }).pothosOptions?.authScopes;
      if (named && isInputObjectType(named) && named.getFields().key && !scoped) fields.push(field as GraphQLField<unknown, Context>);
    }
  }
  return fields;
}

function limited(field: string, seconds: number) {
  const message = `Too many requests; retry after ${seconds} s`;
  // validateLicense answers with a Validation, not a union (CONTRACT.md).
  if (field === 'validateLicense') return { valid: false, code: 'RATE_LIMITED' as const, licenseId: null };
  // Wrapped as Pothos' errors plugin wraps a thrown LicensingError, so the union resolves it.
  return wrapErrorIfMatches(new LicensingError('RATE_LIMITED', message), [LicensingError]);
}

// Results come back wrapped by the errors plugin (a proxy), so they are recognised by their fields.
function isUnknownKey(result: unknown): boolean {
  const r = result as { name?: unknown; code?: unknown; fields?: { path: string }[] } | null;
  if (!r || typeof r !== 'object') return false;
  if (r.code === 'LICENSE_NOT_FOUND') return true;
  return r.name === 'ValidationError' && (r.fields ?? []).some((f) => f.path === 'key' || f.path.endsWith('.key'));
}

const isValidationError = (result: unknown) => (result as { name?: unknown } | null)?.name === 'ValidationError';

/** The per-IP bucket of the caller: from the HTTP request, or the address the WebSocket upgrade came from. */
function ipOf(state: AppState, ctx: Context): string | undefined {
  if (ctx.transport === 'http') return state.ips.get(ctx.request);
  return ctx.clientIp ? ipBucket(ctx.clientIp) : undefined;
}

/** Spellings of one key that key parsing accepts as the same key (case, look-alikes) share a bucket. */
function keyBucket(key: unknown): string {
  if (typeof key !== 'string') return '';
  return digest(parseKey(key)?.key ?? key.trim().toUpperCase());
}

function wrapClientField(field: GraphQLField<unknown, Context>) {
  const original: Resolver = field.resolve!;
  const name = field.name;
  field.resolve = async (root, args, ctx, info) => {
    const state = perApp.get(ctx.app);
    if (!state) return original(root, args, ctx, info);
    const ip = ipOf(state, ctx);
    const keyId = keyBucket((args as { input?: { key?: unknown } }).input?.key);
    const { limits } = state;
    // Taken together, one round trip with Redis. The unknown-key point is a place for this lookup: given
    // back below unless the key turned out unknown, so a limit of N lets at most N unknown-key lookups
    // run, however concurrent (aliases, parallel requests, several instances sharing Redis).
    const [unknownWait, keyWait, ipWait] = await Promise.all([
      ip ? take(limits.unknownKeys, ip) : null,
      take(limits.key, keyId),
      ip ? take(limits.ip, ip) : null,
    ]);
    // A refused take counts its point too: returned at once.
    if (ip && unknownWait !== null) void giveBack(limits.unknownKeys, ip);
    let placed = !!ip && unknownWait === null;
    let unknownKey = false;
    try {
      let wait = keyWait ?? ipWait;
      if (wait === null && ip && unknownWait !== null) {
        wait = await placeForLookup(limits, ip, unknownWait);
        placed = wait === null;
      }
      if (wait !== null) {
        if (ctx.transport === 'http') state.retryAfter.set(ctx.request, wait);
        return limited(name, wait);
      }
      const result = await original(root, args, ctx, info);
      unknownKey = isUnknownKey(result);
      if (unknownKey && ip) await take(limits.unknownKeysAnswered, ip);
      return result;
    } finally {
      // Not awaited: the answer need not wait for it, and the store applies it before any later call's take.
      if (placed && !unknownKey) void giveBack(limits.unknownKeys, ip!);
    }
  };
}

/**
 * Password checks (signIn, changePassword) count against the failed sign-in budgets of the account (tenant
 * slug + email) and the address: a wrong current password given with a stolen session costs as a wrong
 * sign-in does, from the same budget. `account` names the account (null: nothing to count, e.g. no session);
 * `failed` tells a wrong password (or refused input) from any other answer.
 */
function wrapPasswordCheck(
  field: GraphQLField<unknown, Context>,
  accountOf: (args: unknown, ctx: Context) => Promise<string | null> | string | null,
  failed: (result: unknown) => boolean,
) {
  const original: Resolver = field.resolve!;
  field.resolve = async (root, args, ctx, info) => {
    const state = perApp.get(ctx.app);
    const name = state && (await accountOf(args, ctx));
    if (!state || !name) return original(root, args, ctx, info);
    const ip = ipOf(state, ctx);
    const account = digest(name);
    const { limits } = state;
    // Points are taken before the (slow) password check, so no more attempts than the limits allow are
    // ever checked at once. Only a wrong password (or refused input) keeps them: a success, an error, or
    // the address's refusal (for the account's point) gives them back.
    let wait = await take(limits.signInAccount, account);
    if (wait === null && ip) {
      wait = await take(limits.signInIp, ip);
      if (wait !== null) await giveBack(limits.signInAccount, account);
    }
    if (wait !== null) {
      if (ctx.transport === 'http') state.retryAfter.set(ctx.request, wait);
      throw new GraphQLError(`Too many failed sign-ins; retry after ${wait} s`, {
        extensions: { code: 'RATE_LIMITED', retryAfter: wait },
      });
    }
    let outcome: 'succeeded' | 'failed' | 'error' = 'error';
    try {
      const result = await original(root, args, ctx, info);
      outcome = failed(result) ? 'failed' : 'succeeded';
      return result;
    } finally {
      if (outcome === 'succeeded') await limits.signInAccount?.delete(account).catch(() => false);
      if (outcome === 'error') await giveBack(limits.signInAccount, account);
      if (outcome !== 'failed' && ip) await giveBack(limits.signInIp, ip);
    }
  };
}

const accountName = (tenant: string, email: string) => `${tenant.trim().toLowerCase()}\n${email.trim().toLowerCase()}`;

function signInAccount(args: unknown): string {
  const input = (args as { input: { tenant: string; email: string } }).input;
  return accountName(String(input.tenant), String(input.email));
}

/** The signed-in member's account, named as signIn names it. */
async function sessionAccount(_args: unknown, ctx: Context): Promise<string | null> {
  if (ctx.actor.kind !== 'user') return null;
  const user = await ctx.prisma.user.findUnique({ where: { id: ctx.actor.userId }, select: { email: true, tenant: { select: { slug: true } } } });
  return user ? accountName(user.tenant.slug, user.email) : null;
}

const wrongCurrentPassword = (result: unknown) =>
  isValidationError(result) && ((result as { fields?: { path: string }[] }).fields ?? []).some((f) => f.path === 'currentPassword');

/** Wraps the client operations, signIn and changePassword once per schema; each app finds its own limits through the context. */
function instrument(schema: GraphQLSchema) {
  const marked = schema as GraphQLSchema & { [WRAPPED]?: boolean };
  if (marked[WRAPPED]) return;
  marked[WRAPPED] = true;
  for (const field of clientFields(schema)) wrapClientField(field);
  const mutations = schema.getMutationType()?.getFields();
  if (mutations?.signIn) wrapPasswordCheck(mutations.signIn as GraphQLField<unknown, Context>, signInAccount, isValidationError);
  if (mutations?.changePassword) wrapPasswordCheck(mutations.changePassword as GraphQLField<unknown, Context>, sessionAccount, wrongCurrentPassword);
}

/** Seconds to wait when the admin credential `actor` is over its budget (taking one point), else null. */
async function adminWait(limits: RateLimits, actor: Actor | undefined): Promise<number | null> {
  if (!actor || actor.kind === 'anonymous' || !limits.admin) return null;
  const id = actor.kind === 'token' ? `t:${actor.tokenId}` : actor.kind === 'user' ? `s:${actor.sessionId}` : `o:${actor.tenantId}`;
  return take(limits.admin, id);
}

const tooMany = (wait: number) => `Too many requests; retry after ${wait} s`;

/** RATE_LIMITED when the caller's admin credential is over its budget (taking one point), else null. */
async function adminRefusal(state: AppState, ctx: Context): Promise<ExecutionResult | null> {
  const wait = await adminWait(state.limits, ctx.actor);
  if (wait === null) return null;
  if (ctx.transport === 'http') state.retryAfter.set(ctx.request, wait);
  return { errors: [new GraphQLError(tooMany(wait), { extensions: { code: 'RATE_LIMITED', retryAfter: wait } })] };
}

/**
 * For the routes beside /graphql (audit export, offline bundle): a 429 RATE_LIMITED with Retry-After when
 * the caller's admin credential is over its budget (taking one point, as an operation does), else null.
 */
export async function adminRouteRefusal(deps: AppDeps, actor: Actor): Promise<Response | null> {
  const state = perApp.get(deps);
  const wait = state ? await adminWait(state.limits, actor) : null;
  if (wait === null) return null;
  return json(429, { errors: [{ message: tooMany(wait), extensions: { code: 'RATE_LIMITED', retryAfter: wait } }] }, { 'retry-after': String(wait) });
}

export function rateLimitPlugin(deps: AppDeps, limits: RateLimits): Plugin<{ req?: IncomingMessage }> {
  const state: AppState = { limits, ips: new WeakMap<Request, string>(), retryAfter: new WeakMap<Request, number>() };
  perApp.set(deps, state);
  return {
    onSchemaChange({ schema }) {
      instrument(schema);
    },
    onRequest({ request, serverContext }) {
      const req = (serverContext as { req?: IncomingMessage } | undefined)?.req;
      const ip = clientIp(request.headers.get('x-forwarded-for'), req?.socket?.remoteAddress, limits.trustProxy);
      if (ip) state.ips.set(request, ipBucket(ip));
    },
    // Admin traffic: each credential (API token, session, operator) has its own budget, which a
    // subscription started (over HTTP or graphql-ws) takes from as a query does.
    async onExecute({ args, setResultAndStopExecution }) {
      const refused = await adminRefusal(state, args.contextValue as unknown as Context);
      if (refused) setResultAndStopExecution(refused);
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const refused = await adminRefusal(state, args.contextValue as unknown as Context);
      if (refused) setResultAndStopExecution(refused);
    },
    onResponse({ request, response }) {
      const wait = state.retryAfter.get(request);
      if (wait !== undefined) response.headers.set('retry-after', String(wait));
    },
  };
}
