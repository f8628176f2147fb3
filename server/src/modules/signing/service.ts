import { createCipheriv, createDecipheriv, createPrivateKey, type KeyObject, randomBytes, sign as edSign } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SigningKey } from '@tessera/db/client';
import type { Database } from '@tessera/db/database';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, type JWK, type JWTPayload } from 'jose';
import type { Config } from '../../config.ts';
import type { AppDeps } from '../../context.ts';
import { inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';

/** Distinct `typ` values, so one kind of signed document can never be presented as another. */
export const TOKEN_TYPES = {
  activation: 'tessera-activation+jwt',
  license: 'tessera-license+jwt',
  lease: 'tessera-lease+jwt',
  receipt: 'tessera-receipt+jwt',
} as const;
export type TokenType = (typeof TOKEN_TYPES)[keyof typeof TOKEN_TYPES];

export const SIGNING_ALGORITHM = 'EdDSA';

// ---------------------------------------------------------------------------------------------
// Master key: encrypts tenants' private keys at rest (AES-256-GCM).

/** A 32-byte key given as 64 hex digits or base64/base64url. Anything else is refused at start-up. */
export function parseMasterKey(text: string): Buffer {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex');
  const b = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (b.length === 32 && /^[A-Za-z0-9+/_-]{43}=?$/.test(s)) return b;
  throw new Error('TESSERA_MASTER_KEY must be 32 bytes, as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)');
}

/** The master key in use and where it comes from, for messages about it. */
export interface MasterKey {
  key: Buffer;
  /** `TESSERA_MASTER_KEY`, `the key generated in <file>` or `a generated in-memory key`. */
  source: string;
}

/**
 * TESSERA_MASTER_KEY when set; otherwise `<dataDir>/master.key` (created once, mode 0600, safe when
 * two processes start together). An in-memory PGlite, and tests, get a generated in-memory key:
 * nothing they sign outlives the process.
 */
export function resolveMasterKey(config: Config, db: Database): MasterKey {
  if (config.masterKey) return { key: parseMasterKey(config.masterKey), source: 'TESSERA_MASTER_KEY' };
  const memory = db.kind === 'pglite' && (!db.pglite?.dataDir || db.pglite.dataDir.startsWith('memory://'));
  if (memory) return { key: randomBytes(32), source: 'a generated in-memory key' };
  const { key, created, file } = masterKeyFile(config.dataDir);
  if (created && db.kind === 'postgres') {
    console.warn(`Generated ${file}. Every server instance sharing this database needs the same key: set TESSERA_MASTER_KEY.`);
  }
  return { key, source: `the master key ${created ? 'generated now' : 'generated earlier'} in ${file}` };
}

const masterKeys = new WeakMap<AppDeps, MasterKey>();

/** The app's master key, resolved once (an in-memory database gets one generated key for its lifetime). */
export function masterKeyOf(app: AppDeps): MasterKey {
  let key = masterKeys.get(app);
  if (!key) {
    key = resolveMasterKey(app.config, app.db);
    masterKeys.set(app, key);
  }
  return key;
}

/** Rows read at a time by checkMasterKey. */
const CHECK_BATCH = 1000;
/** Tenants named in checkMasterKey's message; the count says how many more. */
const NAMED = 5;

/**
 * Fails the start when the database holds secrets the master key cannot decrypt: the tenants' current
 * signing keys and the webhook endpoints' secrets, sealed by an instance that ran with another key (a
 * different TESSERA_MASTER_KEY, or a master.key each instance generated for itself). Without this
 * check every activation, license file and webhook delivery of those tenants fails later, one by one.
 */
export async function checkMasterKey(app: AppDeps): Promise<void> {
  const { key, source } = masterKeyOf(app);
  const failed = new Set<string>();
  const signingKeys = inBatches((after) =>
    app.prisma.signingKey.findMany({
      where: { retiredAt: null, ...(after ? { id: { gt: after } } : {}) },
      select: { id: true, tenantId: true, kid: true, encryptedPrivateKey: true },
      orderBy: { id: 'asc' },
      take: CHECK_BATCH,
    }),
  );
  for await (const r of signingKeys) if (!opens(key, r.encryptedPrivateKey, r.kid)) failed.add(r.tenantId);
  const endpoints = inBatches((after) =>
    app.prisma.webhookEndpoint.findMany({
      where: after ? { id: { gt: after } } : {},
      select: { id: true, tenantId: true, encryptedSecret: true },
      orderBy: { id: 'asc' },
      take: CHECK_BATCH,
    }),
  );
  for await (const r of endpoints) if (!opens(key, r.encryptedSecret, `webhook:${r.id}`)) failed.add(r.tenantId);
  if (failed.size === 0) return;
  const ids = [...failed];
  const named = await app.prisma.tenant.findMany({ where: { id: { in: ids.slice(0, NAMED) } }, select: { slug: true }, orderBy: { slug: 'asc' } });
  const more = ids.length > named.length ? ` and ${ids.length - named.length} more` : '';
  throw new Error(
    `${source} cannot decrypt the signing keys or webhook secrets of ${failed.size} tenant${failed.size === 1 ? '' : 's'} in this database ` +
      `(${named.map((t) => t.slug).join(', ')}${more}): another master key encrypted them. ` +
      'Start every instance sharing the database with the TESSERA_MASTER_KEY that encrypted them.',
  );
}

/** Every row `page` reads, in id order, CHECK_BATCH at a time (keyset paging from the last id read). */
async function* inBatches<T extends { id: string }>(page: (after: string | undefined) => Promise<T[]>): AsyncGenerator<T> {
  let after: string | undefined;
  for (;;) {
    const rows = await page(after);
    yield* rows;
    if (rows.length < CHECK_BATCH) return;
    after = rows[rows.length - 1]!.id;
  }
}

function opens(key: Buffer, sealed: string, aad: string): boolean {
  try {
    unseal(key, sealed, aad);
    return true;
  } catch {
    return false;
  }
}

/** `<dir>/master.key`: read, or created once with mode 0600 (exclusive create, so two starting processes agree). */
export function masterKeyFile(dir: string): { key: Buffer; created: boolean; file: string } {
  const file = path.join(dir, 'master.key');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let created = false;
  try {
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return { key: parseMasterKey(readFileSync(file, 'utf8')), created, file };
}

/** `v1.<iv>.<tag>.<ciphertext>`; the kid is authenticated data, so a blob cannot be moved to another key row. */
export function seal(masterKey: Buffer, plaintext: string, kid: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
  cipher.setAAD(Buffer.from(kid));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
}

export function unseal(masterKey: Buffer, sealed: string, kid: string): string {
  const [v, iv, tag, body] = sealed.split('.');
  if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('unknown private key encoding');
  const decipher = createDecipheriv('aes-256-gcm', masterKey, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(kid));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new Error(`cannot decrypt signing key ${kid}: the master key differs from the one that encrypted it`);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-tenant Ed25519 keys.

interface ActiveKey {
  kid: string;
  issuer: string;
  key: KeyObject;
}

const base64url = (text: string) => Buffer.from(text).toString('base64url');

export interface Signer {
  /**
   * Signs `claims` as a compact JWS with the tenant's current key; `iss` is the tenant slug, `iat` now or
   * `issuedAt` (Ed25519 is deterministic: the same claims and time give the same token, which is how an
   * idempotent retry answers with the first call's token without storing it).
   */
  sign(tenantId: string, typ: TokenType, claims: JWTPayload, expiresAt?: Date | null, issuedAt?: Date): Promise<string>;
  /** The tenant's published keys (current and retired, still verifiable), or null for an unknown tenant. */
  jwks(slug: string): Promise<{ keys: JWK[] } | null>;
  /** Retires the current key and creates a new one; old tokens keep verifying. */
  rotate(ctx: ServiceContext, tenantId: string): Promise<SigningKey>;
}

// A key rotated on another instance takes over here within this time; the retired key stays published.
const CACHE_MS = 60_000;

const signers = new WeakMap<AppDeps, Signer>();

/** The process's signer for these deps (created on first use; buildApp creates it at start). */
export function signerFor(app: AppDeps): Signer {
  let s = signers.get(app);
  if (!s) {
    s = createSigner(app, masterKeyOf(app).key);
    signers.set(app, s);
  }
  return s;
}

function systemContext(app: AppDeps): ServiceContext {
  return { app, prisma: app.prisma, actor: { kind: 'anonymous' }, requestId: 'signing' };
}

export function createSigner(app: AppDeps, masterKey: Buffer): Signer {
  const cache = new Map<string, { at: number; key: Promise<ActiveKey> }>();

  async function newKey(tx: Tx, tenantId: string): Promise<SigningKey> {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { crv: 'Ed25519', extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const encryptedPrivateKey = seal(masterKey, await exportPKCS8(privateKey), kid);
    return tx.signingKey.create({ data: { tenantId, kid, algorithm: SIGNING_ALGORITHM, publicJwk: { ...publicJwk }, encryptedPrivateKey } });
  }

  /** Serialises key creation per tenant, so concurrent first uses create one key. */
  async function lockTenant(tx: Tx, tenantId: string) {
    await tx.$queryRaw`SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext(${`signing:${tenantId}`}))) AS l`;
  }

  async function ensureKey(tenantId: string): Promise<SigningKey> {
    const current = await app.prisma.signingKey.findFirst({ where: { tenantId, retiredAt: null }, orderBy: { createdAt: 'desc' } });
    if (current) return current;
    return inTransaction(systemContext(app), tenantId, async (tx, emit) => {
      await lockTenant(tx, tenantId);
      const again = await tx.signingKey.findFirst({ where: { tenantId, retiredAt: null }, orderBy: { createdAt: 'desc' } });
      if (again) return again;
      const key = await newKey(tx, tenantId);
      emit({ type: 'signing_key.created', subjectType: 'SigningKey', subjectId: key.id, payload: { kid: key.kid }, actor: { type: 'system', id: null } });
      return key;
    });
  }

  async function load(tenantId: string): Promise<ActiveKey> {
    const [row, tenant] = await Promise.all([ensureKey(tenantId), app.prisma.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { slug: true } })]);
    const key = createPrivateKey(unseal(masterKey, row.encryptedPrivateKey, row.kid));
    return { kid: row.kid, issuer: tenant.slug, key };
  }

  function activeKey(tenantId: string): Promise<ActiveKey> {
    const hit = cache.get(tenantId);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.key;
    const key = load(tenantId);
    cache.set(tenantId, { at: Date.now(), key });
    key.catch(() => cache.delete(tenantId));
    return key;
  }

  return {
    async sign(tenantId, typ, claims, expiresAt, issuedAt) {
      const { kid, issuer, key } = await activeKey(tenantId);
      // A compact JWS (RFC 7515) signed synchronously with node:crypto: on the hot paths the WebCrypto
      // route (a thread-pool job per signature) cost several times the signature itself. Verified
      // by any JOSE library against the tenant's JWKS, as the tests do with jose.
      const header = base64url(JSON.stringify({ alg: SIGNING_ALGORITHM, kid, typ }));
      const payload: JWTPayload = { ...claims, iss: issuer, iat: Math.floor((issuedAt?.getTime() ?? Date.now()) / 1000) };
      if (expiresAt) payload.exp = Math.floor(expiresAt.getTime() / 1000);
      const input = `${header}.${base64url(JSON.stringify(payload))}`;
      return `${input}.${edSign(null, Buffer.from(input), key).toString('base64url')}`;
    },

    async jwks(slug) {
      const tenant = await app.prisma.tenant.findUnique({ where: { slug }, select: { id: true } });
      if (!tenant) return null;
      let rows = await app.prisma.signingKey.findMany({ where: { tenantId: tenant.id }, orderBy: { createdAt: 'desc' } });
      // A tenant publishes a key before its first token, so an SDK can embed the JWKS at build time.
      if (rows.length === 0) rows = [await ensureKey(tenant.id)];
      return {
        keys: rows.map((r) => ({ ...(r.publicJwk as JWK), kid: r.kid, alg: r.algorithm, use: 'sig' })),
      };
    },

    async rotate(ctx, tenantId) {
      const key = await inTransaction(ctx, tenantId, async (tx, emit) => {
        await lockTenant(tx, tenantId);
        const retired = await tx.signingKey.updateManyAndReturn({
          where: { tenantId, retiredAt: null },
          data: { retiredAt: new Date() },
          select: { kid: true },
        });
        const key = await newKey(tx, tenantId);
        emit({
          type: 'signing_key.rotated',
          subjectType: 'SigningKey',
          subjectId: key.id,
          payload: { kid: key.kid, retired: retired.map((r) => r.kid) },
        });
        return key;
      });
      cache.delete(tenantId);
      return key;
    },
  };
}
