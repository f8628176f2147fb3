import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import type { JSONWebKeySet } from 'jose';
import { type Entitlement, entitlement, entitlementsOf, featuresOf, isEntitled } from './entitlements.ts';
import { TesseraError, type TesseraErrorCode } from './errors.ts';
import { collectFingerprint, type Fingerprint } from './fingerprint.ts';
import { type OperationName, OPERATIONS } from './operations.ts';
import { defaultStatePath, fileStorage, type LicenseState, type Storage } from './storage.ts';
import { type DeviceKey, generateDeviceKey, signActivationRequest, signDeactivation } from './offline.ts';
import { decodeJwt } from 'jose';
import { unarmor, verifyDocument, type VerifiedDocument } from './verify.ts';

export interface ClientOptions {
  /** The GraphQL endpoint, e.g. https://licensing.example.com/graphql */
  endpoint: string;
  /** The vendor's tenant slug: salts the fingerprint and names the issuer of signed documents. */
  tenant: string;
  /** The tenant's public keys (JWKS), embedded in the application for offline verification. */
  publicKeys?: JSONWebKeySet;
  /** Where the token, license file and last-seen time are kept (default: ~/.tessera/<tenant>.json, mode 0600). */
  storage?: Storage;
  /** This machine's identity (default: collected from the hardware, hashed with the tenant salt). */
  device?: Fingerprint;
  appVersion?: string;
  /** Per-request time limit (default 10 s). */
  timeoutMs?: number;
  /** How long validation may succeed offline after the last server contact (default 7 days). */
  gracePeriodSeconds?: number;
  /** Send operation hashes only (default true), as production servers require. */
  persisted?: boolean;
  fetch?: typeof fetch;
}

export interface LicenseInfo {
  status: 'ACTIVE' | 'EXPIRED' | 'SUSPENDED' | 'REVOKED';
  type: string;
  expiresAt: string | null;
  revision: number;
  maxActivations: number | null;
  activationsUsed: number;
  features: string[];
  /** Numeric entitlements, e.g. `{ feature: 'projects', limit: 10 }`. */
  entitlements: Entitlement[];
}

export interface Activation {
  id: string;
  status: 'ACTIVE' | 'INACTIVE' | 'RELEASED';
  fingerprint: string;
  activatedAt: string;
  lastHeartbeatAt: string | null;
  license: LicenseInfo;
}

export interface ValidationResult {
  valid: boolean;
  code: TesseraErrorCode | null;
  license: LicenseInfo | null;
  /** True when decided from the stored signed token because the server was unreachable. */
  offline: boolean;
}

export interface UsageTicket {
  id: string;
  status: 'AUTHORIZED' | 'COMMITTED' | 'RELEASED' | 'EXPIRED';
  quantity: number;
  remaining: number | null;
  expiresAt: string | null;
  receipt: string;
}

/** How a usage call retries a network failure, an unavailable server or a rate limit. */
export interface UsageOptions {
  /** Reused by a retry, so the server counts the use once; generated (and stored until answered) when not given. */
  idempotencyKey?: string;
  /** Retries after the first attempt (default 3), 0.5, 1, 2 s apart, or after the server's Retry-After. */
  retries?: number;
  /** The longest Retry-After a retry waits for (default 30 s); a longer one fails the call at once. */
  maxWaitSeconds?: number;
}

export interface SeatLease {
  id: string;
  expiresAt: string;
  token: string;
}

const hashes = new Map<string, string>();
/** SHA-256 of the operation text: what the server's persisted-operation allow-list is keyed by. */
export function operationHash(name: OperationName): string {
  let h = hashes.get(name);
  if (!h) {
    h = createHash('sha256').update(OPERATIONS[name]).digest('hex');
    hashes.set(name, h);
  }
  return h;
}

const DAY = 86_400;
/** The most a deactivation file may report per meter (the server's Int). */
const MAX_OFFLINE_USAGE = 2_147_483_647;

/** A wait in whole seconds, or undefined when `value` is none. */
function seconds(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.ceil(value) : undefined;
}

/** A Retry-After header (seconds, or an HTTP date read against the server's own clock) in seconds. */
function retryAfterOf(header: string | null, serverTime: Date | null): number | undefined {
  if (!header) return undefined;
  if (/^\s*\d+\s*$/.test(header)) return seconds(Number(header));
  const at = new Date(header).getTime();
  return Number.isNaN(at) ? undefined : seconds(Math.max(0, (at - (serverTime ?? new Date()).getTime()) / 1000));
}

/**
 * Server answers that this device may not use the license. Remembered, so the stored token does not keep
 * validating offline; the next successful answer clears it (suspension and expiry can be undone).
 */
const REFUSALS: ReadonlySet<string> = new Set<TesseraErrorCode>([
  'LICENSE_REVOKED', 'LICENSE_SUSPENDED', 'LICENSE_EXPIRED', 'LICENSE_NOT_YET_VALID', 'LICENSE_NOT_FOUND', 'NOT_ACTIVATED', 'ACTIVATION_RELEASED',
]);

/** Answers after which the heartbeat loop stops for good: the license is over or this activation is gone. */
const FINAL_FOR_HEARTBEATS: ReadonlySet<string> = new Set<TesseraErrorCode>(['LICENSE_REVOKED', 'LICENSE_EXPIRED', 'ACTIVATION_RELEASED', 'NOT_ACTIVATED', 'LICENSE_NOT_FOUND']);

// Idempotency keys of usage calls running in this process: no other call may adopt them.
const usageInFlight = new Set<string>();

/** State files written before keys were stored per call held `operation:meter:quantity:` -> key. */
function migratePendingUsage(pending: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(pending)) {
    if (/^(RecordUsage|AuthorizeUsage):.*:$/.test(k)) out[v] = k.slice(0, -1);
    else if (!/^(RecordUsage|AuthorizeUsage):/.test(k)) out[k] = v;
  }
  return out;
}

// Custom storages without `update`: the client serialises its own read-modify-writes per storage object.
const storageQueues = new WeakMap<Storage, Promise<unknown>>();

export class TesseraClient {
  readonly device: Fingerprint;
  private readonly storage: Storage;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.device = options.device ?? collectFingerprint(options.tenant);
    this.storage = options.storage ?? fileStorage(defaultStatePath(options.tenant));
    this.fetchImpl = options.fetch ?? fetch;
  }

  private clientInfo() {
    return { hostname: os.hostname(), platform: `${process.platform}-${process.arch}`, osVersion: os.release(), appVersion: this.options.appVersion };
  }

  /** One GraphQL call: hash first (persisted), the full text only if the server asks for it. */
  private async call<T>(name: OperationName, variables: Record<string, unknown>): Promise<T> {
    return (await this.request<T>(name, variables)).data;
  }

  /** A call and the server's clock when it answered (its Date header), when it sent one. */
  private async request<T>(name: OperationName, variables: Record<string, unknown>): Promise<{ data: T; serverTime: Date | null }> {
    const persisted = this.options.persisted ?? true;
    const extensions = { persistedQuery: { version: 1, sha256Hash: operationHash(name) } };
    let { body, serverTime, retryAfter } = await this.post(persisted ? { operationName: name, variables, extensions } : { operationName: name, variables, query: OPERATIONS[name] });
    if (persisted && body.errors?.some((e) => /PersistedQueryNotFound/i.test(e.message ?? '') || e.extensions?.code === 'PERSISTED_QUERY_NOT_FOUND')) {
      ({ body, serverTime, retryAfter } = await this.post({ operationName: name, variables, extensions, query: OPERATIONS[name] }));
    }
    if (body.errors?.length) {
      const { message, extensions } = body.errors[0]!;
      if (extensions?.code === 'RATE_LIMITED') {
        throw new TesseraError('RATE_LIMITED', message ?? 'rate limited', [], retryAfter ?? seconds(extensions.retryAfter));
      }
      throw new TesseraError('BAD_RESPONSE', `the server refused the request: ${message ?? 'unknown error'}`);
    }
    if (!body.data || typeof body.data !== 'object') throw new TesseraError('BAD_RESPONSE', 'the server answered without data');
    // A client operation over its rate limit answers RATE_LIMITED as its result (a LicensingError, or a
    // Validation for validateLicense), with Retry-After on the response: the wait goes with the error.
    for (const result of Object.values(body.data)) {
      const r = result as { code?: unknown; message?: unknown } | null;
      if (r?.code === 'RATE_LIMITED') throw new TesseraError('RATE_LIMITED', typeof r.message === 'string' ? r.message : 'the server asks to slow down', [], retryAfter);
    }
    return { data: body.data as T, serverTime };
  }

  private async post(payload: unknown): Promise<{ body: { data?: unknown; errors?: { message?: string; extensions?: { code?: string; retryAfter?: unknown } }[] }; serverTime: Date | null; retryAfter?: number }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs ?? 10_000);
    let res: Response;
    try {
      res = await this.fetchImpl(this.options.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
    } catch (err) {
      throw new TesseraError('NETWORK_ERROR', `cannot reach ${this.options.endpoint}: ${(err as Error).name === 'AbortError' ? 'timed out' : (err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    const date = res.headers.get('date');
    const dated = date ? new Date(date) : null;
    const serverTime = dated && !Number.isNaN(dated.getTime()) ? dated : null;
    const retryAfter = retryAfterOf(res.headers.get('retry-after'), serverTime);
    if (res.status === 429) throw new TesseraError('RATE_LIMITED', 'the server asks to slow down', [], retryAfter);
    if (res.status >= 500) throw new TesseraError('NETWORK_ERROR', `the server answered HTTP ${res.status}`, [], retryAfter);
    try {
      const body = (await res.json()) as { data?: unknown; errors?: { message?: string; extensions?: { code?: string; retryAfter?: unknown } }[] };
      if (typeof body !== 'object' || body === null) throw new Error('not an object');
      return { body, serverTime, retryAfter };
    } catch {
      throw new TesseraError('BAD_RESPONSE', `the server answered HTTP ${res.status} with something that is not GraphQL`);
    }
  }

  /** A union result: the success object, or a typed error. */
  private unwrap<T>(result: unknown, success: string): T {
    const r = result as { __typename?: string; code?: TesseraErrorCode; message?: string; fields?: { path: string; message: string }[] } | null;
    if (!r || typeof r !== 'object' || typeof r.__typename !== 'string') throw new TesseraError('BAD_RESPONSE', 'unexpected response shape');
    if (r.__typename === 'LicensingError') throw new TesseraError(r.code ?? 'BAD_RESPONSE', r.message ?? r.code ?? 'licensing error');
    if (r.__typename === 'ValidationError') throw new TesseraError('VALIDATION_FAILED', r.message ?? 'invalid input', r.fields ?? []);
    if (r.__typename !== success) throw new TesseraError('BAD_RESPONSE', `unexpected ${r.__typename}`);
    return r as T;
  }

  /**
   * Verifies a token the server returned before keeping it: a bad signature never replaces a good one. Its
   * times are checked on the server's clock (the answer's Date header, else the token's own iat), so a
   * token just issued is not refused because this machine's clock is wrong.
   */
  private async checkToken(token: string, serverTime: Date | null): Promise<VerifiedDocument | null> {
    if (!this.options.publicKeys) return null;
    let now = serverTime;
    if (!now) {
      try {
        const { iat } = decodeJwt(unarmor(token));
        if (typeof iat === 'number') now = new Date(iat * 1000);
      } catch {
        // not a JWT: the verification below says so
      }
    }
    try {
      return await verifyDocument(token, { jwks: this.options.publicKeys, kind: 'activation', issuer: this.options.tenant, fingerprint: this.device.fingerprint, now: now ?? undefined });
    } catch (err) {
      if (err instanceof TesseraError) throw new TesseraError(err.code, `the server's token is refused: ${err.message}`);
      throw new TesseraError('INVALID_SIGNATURE', `the server's token does not verify under the embedded keys: ${(err as Error).message}`);
    }
  }

  /**
   * This machine's clock corrected by the server's, as measured at the last contact: offline checks
   * (grace, expiry, clock rollback) run on it, so a clock that is wrong but steady changes nothing.
   */
  private trustedNow(state: LicenseState): Date {
    return new Date(Date.now() + (state.clockOffsetMs ?? 0));
  }

  /** Read-modify-write of the stored state, never interleaved with another one on the same storage. */
  private async update(change: (state: LicenseState) => LicenseState | Promise<LicenseState>): Promise<LicenseState> {
    if (this.storage.update) return this.storage.update(change);
    const storage = this.storage;
    const run = (storageQueues.get(storage) ?? Promise.resolve()).then(async () => {
      const next = await change(await storage.load());
      await storage.save(next);
      return next;
    });
    storageQueues.set(storage, run.catch(() => {}));
    return run;
  }

  /**
   * A successful server answer: the offline grace starts again and any earlier refusal is over. With the
   * server's time, the clock offset is measured again and the latest time seen restarts from the
   * server's now (a clock that once ran fast leaves nothing behind); without it, it only moves forward.
   */
  private async remember(patch: Partial<LicenseState>, serverTime: Date | null = null) {
    const local = Date.now();
    await this.update(({ refusal: _, ...state }) => {
      const clockOffsetMs = serverTime ? serverTime.getTime() - local : state.clockOffsetMs;
      const now = new Date(local + (clockOffsetMs ?? 0)).toISOString();
      const lastSeen = !serverTime && state.lastSeenTime && state.lastSeenTime > now ? state.lastSeenTime : now;
      return { ...state, ...patch, lastOnlineAt: now, lastSeenTime: lastSeen, ...(clockOffsetMs !== undefined ? { clockOffsetMs } : {}) };
    });
  }

  /** The server refused this device (revoked, released, suspended...): offline validation fails with that code from now on. */
  private async refused(err: unknown, key?: string) {
    if (!(err instanceof TesseraError) || !REFUSALS.has(err.code)) return;
    await this.update((state) => (key !== undefined && state.key !== key ? state : { ...state, refusal: { code: err.code, at: new Date().toISOString() } }));
  }

  /** Whether the server answers through the whole API stack (persisted operation, no license involved). */
  async ping(): Promise<boolean> {
    const data = await this.call<{ noop: boolean }>('Ping', {});
    return data.noop === true;
  }

  async state(): Promise<LicenseState> {
    return this.storage.load();
  }

  /** Binds this device to the license key (or single-use token key). Re-activating is free (`reused`). */
  async activate(key: string, options: { idempotencyKey?: string } = {}) {
    const { data, serverTime } = await this.request<{ activate: unknown }>('Activate', {
      input: { key, fingerprint: this.device.fingerprint, components: this.device.components, client: this.clientInfo(), idempotencyKey: options.idempotencyKey },
    });
    let result: { token: string; reused: boolean; goodwill: boolean; activation: Activation };
    try {
      result = this.unwrap(data.activate, 'ActivateSuccess');
    } catch (err) {
      await this.refused(err, key);
      throw err;
    }
    await this.checkToken(result.token, serverTime);
    await this.remember({ key, fingerprint: this.device.fingerprint, token: result.token, revision: result.activation.license.revision }, serverTime);
    return result;
  }

  private async requireKey(): Promise<{ key: string; state: LicenseState }> {
    const state = await this.storage.load();
    if (!state.key) throw new TesseraError('NOT_ACTIVATED', 'this device has not been activated');
    return { key: state.key, state };
  }

  /** One heartbeat; a changed license (renewal, new features) comes back as a fresh token. */
  async heartbeat() {
    return (await this.beat()).result;
  }

  /** A heartbeat, and how long the server gives until the next one (measured on the server's clock when it tells it). */
  private async beat() {
    const { key, state } = await this.requireKey();
    const { data, serverTime } = await this.request<{ heartbeat: unknown }>('Heartbeat', {
      input: { key, fingerprint: this.device.fingerprint, revision: state.revision, client: this.clientInfo() },
    });
    let result: { updateAvailable: boolean; token: string | null; nextHeartbeatBy: string; activation: Activation };
    try {
      result = this.unwrap(data.heartbeat, 'HeartbeatSuccess');
    } catch (err) {
      await this.refused(err, key);
      throw err;
    }
    if (result.token) await this.checkToken(result.token, serverTime);
    await this.remember({ ...(result.token ? { token: result.token } : {}), revision: result.activation.license.revision }, serverTime);
    const nextBy = new Date(result.nextHeartbeatBy).getTime();
    // Without the server's clock, a deadline already past on ours says our clock is off, not that the server
    // is in a hurry. A deadline that is no time (a proxy's mangled answer) says nothing: the fallback interval.
    const untilNext = Number.isNaN(nextBy) ? null : serverTime ? nextBy - serverTime.getTime() : nextBy - Date.now() > 1000 ? nextBy - Date.now() : null;
    return { result, untilNext };
  }

  /**
   * Heartbeats until stopped, when the server asks (`nextHeartbeatBy`), a little early and with jitter so
   * a fleet does not beat in step; failures back off exponentially up to the server's interval.
   */
  startHeartbeat(handlers: { onUpdate?: (token: string) => void; onError?: (err: TesseraError) => void; fallbackSeconds?: number } = {}) {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let failures = 0;
    let interval = (handlers.fallbackSeconds ?? 300) * 1000;
    let running: Promise<void> = Promise.resolve();
    const schedule = (ms: number) => {
      if (stopped) return;
      timer = setTimeout(() => {
        running = beat();
      }, Math.max(1000, ms));
      timer.unref?.();
    };
    const beat = async () => {
      try {
        const { result: r, untilNext } = await this.beat();
        failures = 0;
        if (r.updateAvailable && r.token) handlers.onUpdate?.(r.token);
        interval = Math.max(1000, untilNext ?? (handlers.fallbackSeconds ?? 300) * 1000);
        schedule(interval * (0.7 + Math.random() * 0.2));
      } catch (err) {
        const e = err instanceof TesseraError ? err : new TesseraError('BAD_RESPONSE', String(err));
        handlers.onError?.(e);
        // Revoked, expired, released, gone: beating again will not help. Anything else (network, a
        // suspension that can be lifted) is tried again, backing off up to the server's interval.
        if (FINAL_FOR_HEARTBEATS.has(e.code)) return;
        failures++;
        const backoff = Math.min(interval, 2 ** Math.min(failures, 10) * 1000) * (0.8 + Math.random() * 0.4);
        // Never before the server's Retry-After (rate limited, or down for a while): a beat sooner is refused again.
        schedule(Math.max(backoff, (e.retryAfterSeconds ?? 0) * 1000 * (1 + Math.random() * 0.2)));
      }
    };
    running = beat();
    return {
      stop: async () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        await running.catch(() => {});
      },
    };
  }

  /**
   * Online validation, falling back to the signed material on this machine when the server cannot be
   * reached: an installed license file until it expires, else the stored activation token for
   * `gracePeriodSeconds` after the last contact; with clock-rollback detection either way.
   */
  async validate(options: { feature?: string; quantity?: number; version?: string } = {}): Promise<ValidationResult> {
    const { key, state } = await this.requireKey();
    try {
      const { data, serverTime } = await this.request<{ validateLicense: { valid: boolean; code: TesseraErrorCode | null; license: LicenseInfo | null } }>('ValidateLicense', {
        input: { key, fingerprint: this.device.fingerprint, version: options.version ?? this.options.appVersion, feature: options.feature, quantity: options.quantity },
      });
      const v = data.validateLicense;
      if (!v || typeof v.valid !== 'boolean') throw new TesseraError('BAD_RESPONSE', 'unexpected response shape');
      // Only an answer that the license and this device are in order starts the grace period again; the
      // server checks the feature last, so a missing feature says the license itself is fine.
      if (v.valid || v.code === 'FEATURE_NOT_ENTITLED') await this.remember({}, serverTime);
      else await this.refused(new TesseraError(v.code ?? 'BAD_RESPONSE', 'refused by the server'), key);
      return { valid: v.valid, code: v.code, license: v.license, offline: false };
    } catch (err) {
      if (!(err instanceof TesseraError) || !err.transient) throw err;
      return this.offlineValidation(state, options.feature, options.quantity);
    }
  }

  /**
   * What `validate()` answers when the server cannot be reached, from this machine alone: a refusal the
   * server gave, the grace period since the last contact (activation token), the clock, the signature, this
   * machine, expiry, and the feature asked for. Asks nothing of the server.
   */
  async validateOffline(options: { feature?: string; quantity?: number } = {}): Promise<ValidationResult> {
    return this.offlineValidation(await this.storage.load(), options.feature, options.quantity);
  }

  private async offlineValidation(state: LicenseState, feature?: string, quantity?: number): Promise<ValidationResult> {
    const fail = (code: TesseraErrorCode): ValidationResult => ({ valid: false, code, license: null, offline: true });
    if (state.refusal) return fail(state.refusal.code as TesseraErrorCode);
    if ((!state.token && !state.licenseFile) || !this.options.publicKeys) return fail('NOT_ACTIVATED');
    const now = this.trustedNow(state);
    const grace = (this.options.gracePeriodSeconds ?? 7 * DAY) * 1000;
    if (state.lastSeenTime && now.getTime() + 300_000 < new Date(state.lastSeenTime).getTime()) return fail('CLOCK_ROLLBACK');
    // An installed license file (air-gapped activation) is this machine's license until it expires, with
    // no server contact to wait for; an activation token holds for the grace period after the last contact.
    if (!state.licenseFile && (!state.lastOnlineAt || now.getTime() - new Date(state.lastOnlineAt).getTime() > grace)) return fail('GRACE_PERIOD_EXPIRED');
    try {
      const { payload } = state.licenseFile
        ? await this.verifyAgainst(state.licenseFile, state)
        : await verifyDocument(state.token!, {
            jwks: this.options.publicKeys,
            kind: 'activation',
            issuer: this.options.tenant,
            fingerprint: this.device.fingerprint,
            now,
            lastSeenTime: state.lastSeenTime ? new Date(state.lastSeenTime) : undefined,
          });
      const features = featuresOf(payload);
      if (feature && !isEntitled(payload, feature, quantity)) return fail('FEATURE_NOT_ENTITLED');
      await this.update((s) => ({ ...s, lastSeenTime: now.toISOString() > (s.lastSeenTime ?? '') ? now.toISOString() : s.lastSeenTime }));
      return {
        valid: true,
        code: null,
        offline: true,
        license: {
          status: 'ACTIVE',
          type: String(payload.licenseType ?? ''),
          expiresAt: (payload.licenseExpiresAt as string | null) ?? null,
          revision: Number(payload.revision ?? 0),
          maxActivations: (payload.maxActivations as number | null) ?? null,
          activationsUsed: 0,
          features,
          entitlements: entitlementsOf(payload),
        },
      };
    } catch (err) {
      return fail(err instanceof TesseraError ? err.code : 'INVALID_SIGNATURE');
    }
  }

  /**
   * The numeric entitlement of a feature (`{ feature, limit }`, e.g. projects = 10) from the signed material
   * on this machine, verified offline: the installed license file, else the stored activation token.
   * Null when the license gives the feature no limit. Enforce it with `limit` (or `validate({ feature, quantity })`).
   */
  async entitlement(feature: string): Promise<Entitlement | null> {
    if (!this.options.publicKeys) throw new TesseraError('INVALID_SIGNATURE', 'no public keys are embedded to verify with');
    const state = await this.storage.load();
    if (state.licenseFile) return entitlement(await this.verifyLicenseFile(state.licenseFile), feature);
    if (state.refusal) throw new TesseraError(state.refusal.code as TesseraErrorCode, `the server refused this device (${state.refusal.code}) at ${state.refusal.at}`);
    if (!state.token) throw new TesseraError('NOT_ACTIVATED', 'this device has not been activated');
    const verified = await verifyDocument(state.token, {
      jwks: this.options.publicKeys,
      kind: 'activation',
      issuer: this.options.tenant,
      fingerprint: this.device.fingerprint,
      now: this.trustedNow(state),
      lastSeenTime: state.lastSeenTime ? new Date(state.lastSeenTime) : undefined,
    });
    return entitlement(verified, feature);
  }

  /** The limit of a numeric entitlement from the verified material on this machine (see `entitlement`). */
  async limitOf(feature: string): Promise<number | null> {
    return (await this.entitlement(feature))?.limit ?? null;
  }

  /** Frees this device's activation on the server and forgets the local token. */
  async deactivate() {
    const { key } = await this.requireKey();
    const data = await this.call<{ deactivate: unknown }>('Deactivate', { input: { key, fingerprint: this.device.fingerprint } });
    let result: { activation: Activation };
    try {
      result = this.unwrap(data.deactivate, 'DeactivateSuccess');
    } catch (err) {
      await this.refused(err, key);
      throw err;
    }
    await this.update(({ token: _t, revision: _r, ...rest }) => rest);
    return result;
  }

  /**
   * Checks out a floating seat and keeps renewing it until `release()`. With `wait`, a full pool
   * answers `{ queued: position }` instead of NO_SEATS_AVAILABLE.
   */
  async checkoutSeat(options: { user?: string; department?: string; wait?: boolean; onLost?: (err: TesseraError) => void } = {}) {
    const { key } = await this.requireKey();
    // No idempotency key: a checkout is idempotent by itself (this device and user keep the one lease they
    // hold, a retry renews it), and keyed checkouts take the server's slower one-call path.
    const { data, serverTime } = await this.request<{ checkoutSeat: { __typename: string; position?: number } }>('CheckoutSeat', {
      input: { key, fingerprint: this.device.fingerprint, user: options.user, department: options.department, wait: options.wait },
    });
    if (data.checkoutSeat?.__typename === 'SeatQueued') return { queued: data.checkoutSeat.position ?? 0 } as const;
    let lease = this.unwrap<SeatLease>(data.checkoutSeat, 'SeatLease');
    // What is left of the lease by the server's clock (its Date header); this machine's may be off. Without
    // the header, an expiry already past on our clock says our clock is off: keep the last length known.
    // An expiry that is no time says nothing either: renew as if a minute were left.
    let left = new Date(lease.expiresAt).getTime() - (serverTime ?? new Date()).getTime();
    if (Number.isNaN(left) || (left <= 1000 && !serverTime)) left = 60_000;
    let timer: NodeJS.Timeout | undefined;
    let released = false;
    const renew = (retryAfterSeconds = 0) => {
      // Half the lease's time left, but never before a rate-limited or unavailable server's Retry-After.
      const ms = Math.max(1000, left / 2, retryAfterSeconds * 1000);
      timer = setTimeout(async () => {
        try {
          const r = await this.request<{ heartbeatSeat: unknown }>('HeartbeatSeat', { input: { leaseId: lease.id, key } });
          lease = this.unwrap<SeatLease>(r.data.heartbeatSeat, 'SeatLease');
          const remaining = new Date(lease.expiresAt).getTime() - (r.serverTime ?? new Date()).getTime();
          if (!Number.isNaN(remaining) && (r.serverTime || remaining > 1000)) left = remaining;
          if (!released) renew();
        } catch (err) {
          const e = err instanceof TesseraError ? err : new TesseraError('BAD_RESPONSE', String(err));
          if (e.transient && !released) renew(e.retryAfterSeconds);
          else options.onLost?.(e);
        }
      }, ms);
      timer.unref?.();
    };
    renew();
    return {
      lease: () => lease,
      release: async () => {
        released = true;
        if (timer) clearTimeout(timer);
        const r = await this.call<{ releaseSeat: unknown }>('ReleaseSeat', { input: { leaseId: lease.id, key } });
        return this.unwrap<SeatLease>(r.releaseSeat, 'SeatLease');
      },
    };
  }

  /**
   * Metered usage. The idempotency key is generated once per logical call and kept in storage until the
   * server has answered, so a retry — even after a crash and restart — never counts twice.
   */
  async recordUsage(meter: string, quantity: number, options: UsageOptions = {}) {
    return this.usageCall('RecordUsage', 'recordUsage', { meter, quantity }, options);
  }

  async authorizeUsage(meter: string, quantity: number, options: UsageOptions = {}) {
    return this.usageCall('AuthorizeUsage', 'authorizeUsage', { meter, quantity }, options);
  }

  async commitUsage(ticketId: string, quantity?: number) {
    const { key } = await this.requireKey();
    const data = await this.call<{ commitUsage: unknown }>('CommitUsage', { input: { ticketId, key, quantity } });
    return this.unwrap<UsageTicket>(data.commitUsage, 'UsageTicket');
  }

  private async usageCall(
    op: 'RecordUsage' | 'AuthorizeUsage',
    field: 'recordUsage' | 'authorizeUsage',
    params: { meter: string; quantity: number },
    options: UsageOptions,
  ): Promise<UsageTicket> {
    const { key } = await this.requireKey();
    const purpose = `${op}:${params.meter}:${params.quantity}`;
    // A key the caller gives is the caller's to keep. A generated one is stored until the server answers:
    // a later call for the same use adopts a key left by an earlier run (crashed, or out of retries), but
    // never one that a call still in flight in this process holds, which would count two uses once.
    let idempotencyKey = options.idempotencyKey;
    if (!idempotencyKey) {
      await this.update((s) => {
        const pending = migratePendingUsage(s.pendingUsage);
        idempotencyKey = Object.entries(pending).find(([k, p]) => p === purpose && !usageInFlight.has(k))?.[0] ?? `sdk-${randomBytes(12).toString('hex')}`;
        usageInFlight.add(idempotencyKey);
        return { ...s, pendingUsage: { ...pending, [idempotencyKey]: purpose } };
      });
    }
    try {
      return await this.usageAttempts(op, field, params, key, idempotencyKey!, options.idempotencyKey === undefined, options.retries, options.maxWaitSeconds);
    } finally {
      usageInFlight.delete(idempotencyKey!);
    }
  }

  private async usageAttempts(
    op: 'RecordUsage' | 'AuthorizeUsage',
    field: 'recordUsage' | 'authorizeUsage',
    params: { meter: string; quantity: number },
    key: string,
    idempotencyKey: string,
    stored: boolean,
    retries = 3,
    maxWaitSeconds = 30,
  ): Promise<UsageTicket> {
    const forget = () =>
      this.update((s) => {
        const pending = { ...(s.pendingUsage ?? {}) };
        delete pending[idempotencyKey];
        return { ...s, pendingUsage: pending };
      });
    const attempts = retries + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        const data = await this.call<Record<string, unknown>>(op, {
          input: { key, fingerprint: this.device.fingerprint, meter: params.meter, quantity: params.quantity, idempotencyKey },
        });
        const ticket = this.unwrap<UsageTicket>(data[field], 'UsageTicket');
        if (stored) await forget();
        return ticket;
      } catch (err) {
        // The server's refusal (quota, key reused) is its final answer for this key: a new call gets a new one.
        if (stored && err instanceof TesseraError && !err.transient) await forget();
        if (!(err instanceof TesseraError) || !err.transient || attempt >= attempts) throw err;
        // Not before the server's Retry-After (rate limited, or unavailable): a retry sooner is refused
        // again. Longer than the caller would wait, the error (with retryAfterSeconds) goes back now;
        // the stored key stays for the next call of the same use to adopt.
        const asked = (err.retryAfterSeconds ?? 0) * 1000;
        if (asked > maxWaitSeconds * 1000) throw err;
        await new Promise((r) => setTimeout(r, Math.max(2 ** attempt * 250, asked)));
      }
    }
  }

  /** Verifies an offline license file against the embedded keys and this machine, without installing it. */
  async verifyLicenseFile(file: string) {
    return this.verifyAgainst(file, await this.storage.load());
  }

  private async verifyAgainst(file: string, state: LicenseState) {
    if (!this.options.publicKeys) throw new TesseraError('INVALID_SIGNATURE', 'no public keys are embedded to verify with');
    const verified = await verifyDocument(file, {
      jwks: this.options.publicKeys,
      kind: 'license',
      issuer: this.options.tenant,
      fingerprint: this.device.fingerprint,
      now: this.trustedNow(state),
      lastSeenTime: state.lastSeenTime ? new Date(state.lastSeenTime) : undefined,
    });
    // Its deactivation file may already have freed the seat for another machine.
    if (typeof verified.payload.activation === 'string' && state.deactivated?.includes(verified.payload.activation)) {
      throw new TesseraError('ACTIVATION_RELEASED', 'this license file was deactivated on this machine; ask the vendor for a new one');
    }
    return verified;
  }

  /** Installs a license or refresh file; a file with a lower revision than the installed one is refused. */
  async installLicenseFile(file: string) {
    let verified: VerifiedDocument | undefined;
    await this.update(async (state) => {
      verified = await this.verifyAgainst(file, state);
      const revision = Number(verified.payload.revision ?? 0);
      if (state.licenseFile && state.revision !== undefined && revision < state.revision) {
        throw new TesseraError('INVALID_SIGNATURE', `refusing revision ${revision}: revision ${state.revision} is installed`);
      }
      const iat = typeof verified.payload.iat === 'number' ? new Date(verified.payload.iat * 1000).toISOString() : undefined;
      const lastSeenTime = [state.lastSeenTime, iat, this.trustedNow(state).toISOString()].filter(Boolean).sort().at(-1);
      return { ...state, licenseFile: file, revision, lastSeenTime, key: state.key ?? (verified.payload.key as string | undefined) };
    });
    return verified!;
  }

  /**
   * The request file a customer sends to the vendor from an air-gapped machine. It is signed with a
   * device key made here (kept in storage) so the later deactivation file can be proven to come from
   * this machine.
   */
  async createActivationRequest(key: string): Promise<string> {
    const fresh = await generateDeviceKey();
    const state = await this.update((s) => (s.deviceKey ? s : { ...s, deviceKey: fresh as LicenseState['deviceKey'] }));
    const deviceKey = state.deviceKey as DeviceKey;
    return signActivationRequest(
      { tenant: this.options.tenant, key, fingerprint: this.device.fingerprint, components: this.device.components, client: this.clientInfo() },
      deviceKey,
    );
  }

  /**
   * Counts offline consumption of a meter of the installed license file, to be reported in the deactivation
   * file. Only what the vendor's server takes is counted (a meter of the file, at most 2^31 - 1 in all): the
   * deactivation file removes the license from this machine, and one the server refuses would free no seat.
   */
  async recordOfflineUsage(meter: string, quantity: number): Promise<void> {
    if (!Number.isInteger(quantity) || quantity <= 0) throw new TesseraError('VALIDATION_FAILED', 'quantity must be a positive integer');
    await this.update((state) => {
      if (!state.licenseFile) throw new TesseraError('NOT_ACTIVATED', 'no license file is installed: offline usage is reported in its deactivation file');
      // Verified when it was installed.
      const { meters } = decodeJwt(unarmor(state.licenseFile)) as { meters?: unknown };
      if (!Array.isArray(meters) || !meters.some((t) => (t as { meter?: unknown } | null)?.meter === meter)) {
        throw new TesseraError('VALIDATION_FAILED', `the installed license has no meter "${meter}"`, [{ path: 'meter', message: 'not a meter of the installed license' }]);
      }
      const usage = { ...(state.offlineUsage ?? {}) };
      const total = (usage[meter] ?? 0) + quantity;
      if (total > MAX_OFFLINE_USAGE) throw new TesseraError('VALIDATION_FAILED', `the offline usage of "${meter}" would exceed ${MAX_OFFLINE_USAGE}`, [{ path: 'quantity', message: 'too large' }]);
      usage[meter] = total;
      return { ...state, offlineUsage: usage };
    });
  }

  /**
   * Removes the installed license file and returns the signed deactivation file for the vendor, with
   * the offline consumption per meter. After this the license no longer validates here.
   */
  async createDeactivationFile(): Promise<string> {
    let file = '';
    await this.update(async (state) => {
      if (!state.licenseFile) throw new TesseraError('NOT_ACTIVATED', 'no license file is installed');
      if (!state.deviceKey) throw new TesseraError('NOT_ACTIVATED', 'this machine made no activation request, so it has no device key');
      const { payload } = await this.verifyAgainst(state.licenseFile, state).catch(async (err) => {
        // An expired license can still be handed back.
        if (err instanceof TesseraError && err.code === 'LICENSE_EXPIRED') {
          return { payload: decodeJwt(unarmor(state.licenseFile!)) as Record<string, unknown> };
        }
        throw err;
      });
      file = await signDeactivation(
        {
          tenant: this.options.tenant,
          licenseId: String(payload.sub),
          activationId: String(payload.activation),
          fingerprint: this.device.fingerprint,
          usage: state.offlineUsage ?? {},
        },
        state.deviceKey as DeviceKey,
      );
      const { licenseFile: _f, offlineUsage: _u, revision: _r, ...rest } = state;
      return { ...rest, deactivated: [...(state.deactivated ?? []), String(payload.activation)] };
    });
    return file;
  }

}

export function createClient(options: ClientOptions): TesseraClient {
  return new TesseraClient(options);
}
