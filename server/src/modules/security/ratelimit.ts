import { hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { GraphQLError, type GraphQLField, type GraphQLSchema, isInputObjectType, getNamedType } from 'graphql';
import { wrapErrorIfMatches } from '@pothos/plugin-errors';
import type { Plugin } from 'graphql-yoga';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { AppDeps, Context } from '../../context.ts';
import { LicensingError } from '../../errors.ts';
import type { SecurityConfig } from './config.ts';

/**
 * Abuse limits, in memory or (with REDIS_URL) shared by every instance through Redis.
 *
 * Client operations (those authenticated by a license key in `input.key`) count against the key and
 * the caller's IP before anything is looked up, so a known and an unknown key meet exactly the same
 * limits and answers. Keys the server does not know also count against the IP's much smaller
 * unknown-key budget: that, not the per-key limit, is what stops key guessing. Failed sign-ins count
 * per account (tenant + email, whether it exists or not) and per IP.
 */
export interface RateLimits {
  key: RateLimiterAbstract | null;
  ip: RateLimiterAbstract | null;
  unknownKeys: RateLimiterAbstract | null;
  admin: RateLimiterAbstract | null;
  signInAccount: RateLimiterAbstract | null;
  signInIp: RateLimiterAbstract | null;
  trustProxy: number;
  close(): Promise<void>;
}

const MINUTE = 60;
const QUARTER_HOUR = 15 * 60;

export function createRateLimits(config: SecurityConfig, redisUrl?: string, prefix = 'tessera'): RateLimits {
  const redis = redisUrl ? new Redis(redisUrl, { maxRetriesPerRequest: 1 }) : null;
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

/** The client address: the socket's, or the one the configured number of trusted proxies saw. */
export function clientIp(request: Request, req: IncomingMessage | undefined, trustProxy: number): string | null {
  if (trustProxy > 0) {
    const hops = (request.headers.get('x-forwarded-for') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const ip = hops[hops.length - trustProxy] ?? hops[0];
    if (ip) return ip;
  }
  return req?.socket?.remoteAddress ?? null;
}

const perApp = new WeakMap<AppDeps, { limits: RateLimits; ips: WeakMap<Request, string>; retryAfter: WeakMap<Request, number> }>();
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

function wrapClientField(field: GraphQLField<unknown, Context>) {
  const original: Resolver = field.resolve!;
  const name = field.name;
  field.resolve = async (root, args, ctx, info) => {
    const state = perApp.get(ctx.app);
    if (!state) return original(root, args, ctx, info);
    const request = ctx.transport === 'http' ? ctx.request : null;
    const ip = request ? state.ips.get(request) : undefined;
    const key = (args as { input?: { key?: unknown } }).input?.key;
    const keyId = typeof key === 'string' ? digest(key.trim().toUpperCase()) : '';
    const { limits } = state;
    const wait =
      (ip ? await exhausted(limits.unknownKeys, ip) : null) ??
      (await take(limits.key, keyId)) ??
      (ip ? await take(limits.ip, ip) : null);
    if (wait !== null) {
      if (request) state.retryAfter.set(request, wait);
      return limited(name, wait);
    }
    const result = await original(root, args, ctx, info);
    if (ip && isUnknownKey(result)) await take(limits.unknownKeys, ip);
    return result;
  };
}

function wrapSignIn(field: GraphQLField<unknown, Context>) {
  const original: Resolver = field.resolve!;
  field.resolve = async (root, args, ctx, info) => {
    const state = perApp.get(ctx.app);
    if (!state) return original(root, args, ctx, info);
    const request = ctx.transport === 'http' ? ctx.request : null;
    const ip = request ? state.ips.get(request) : undefined;
    const input = (args as { input: { tenant: string; email: string } }).input;
    const account = digest(`${String(input.tenant).trim().toLowerCase()}\n${String(input.email).trim().toLowerCase()}`);
    const { limits } = state;
    const wait = (await exhausted(limits.signInAccount, account)) ?? (ip ? await exhausted(limits.signInIp, ip) : null);
    if (wait !== null) {
      if (request) state.retryAfter.set(request, wait);
      throw new GraphQLError(`Too many failed sign-ins; retry after ${wait} s`, {
        extensions: { code: 'RATE_LIMITED', retryAfter: wait },
      });
    }
    const result = await original(root, args, ctx, info);
    if (isValidationError(result)) {
      await take(limits.signInAccount, account);
      if (ip) await take(limits.signInIp, ip);
    } else {
      await limits.signInAccount?.delete(account).catch(() => false);
    }
    return result;
  };
}

/** Wraps the client operations and signIn once per schema; each app finds its own limits through the context. */
function instrument(schema: GraphQLSchema) {
  const marked = schema as GraphQLSchema & { [WRAPPED]?: boolean };
  if (marked[WRAPPED]) return;
  marked[WRAPPED] = true;
  for (const field of clientFields(schema)) wrapClientField(field);
  const signIn = schema.getMutationType()?.getFields().signIn;
  if (signIn) wrapSignIn(signIn as GraphQLField<unknown, Context>);
}

export function rateLimitPlugin(deps: AppDeps, limits: RateLimits): Plugin<{ req?: IncomingMessage }> {
  const state = { limits, ips: new WeakMap<Request, string>(), retryAfter: new WeakMap<Request, number>() };
  perApp.set(deps, state);
  return {
    onSchemaChange({ schema }) {
      instrument(schema);
    },
    onRequest({ request, serverContext }) {
      const ip = clientIp(request, (serverContext as { req?: IncomingMessage } | undefined)?.req, limits.trustProxy);
      if (ip) state.ips.set(request, ip);
    },
    // Admin traffic: each credential (API token, session, operator) has its own budget.
    async onExecute({ args, setResultAndStopExecution }) {
      const ctx = args.contextValue as unknown as Context;
      const actor = ctx.actor;
      if (!actor || actor.kind === 'anonymous' || !limits.admin) return;
      const id = actor.kind === 'token' ? `t:${actor.tokenId}` : actor.kind === 'user' ? `s:${actor.sessionId}` : `o:${actor.tenantId}`;
      const wait = await take(limits.admin, id);
      if (wait === null) return;
      if (ctx.transport === 'http') state.retryAfter.set(ctx.request, wait);
      setResultAndStopExecution({
        errors: [new GraphQLError(`Too many requests; retry after ${wait} s`, { extensions: { code: 'RATE_LIMITED', retryAfter: wait } })],
      });
    },
    onResponse({ request, response }) {
      const wait = state.retryAfter.get(request);
      if (wait !== undefined) response.headers.set('retry-after', String(wait));
    },
  };
}
