import { createLocalJWKSet, decodeProtectedHeader, errors, type JSONWebKeySet, type JWTPayload, jwtVerify } from 'jose';
import { TesseraError } from './errors.ts';

/** The `typ` of each kind of signed document the server issues. */
export const TOKEN_TYPES = {
  activation: 'tessera-activation+jwt',
  license: 'tessera-license+jwt',
  lease: 'tessera-lease+jwt',
  receipt: 'tessera-receipt+jwt',
} as const;
export type TokenKind = keyof typeof TOKEN_TYPES;

const ARMOR = /-----BEGIN TESSERA ([A-Z ]+)-----([\s\S]*?)-----END TESSERA \1-----/;
const MAX_DOCUMENT_BYTES = 64 * 1024;
/** Tolerated clock difference between the server that signed and this machine. */
const SKEW_SECONDS = 300;

/** The compact JWS inside an armored file (or the input itself when it is not armored). */
export function unarmor(text: string): string {
  if (text.length > MAX_DOCUMENT_BYTES) throw new TesseraError('INVALID_SIGNATURE', 'the document is too large to be a Tessera file');
  const m = ARMOR.exec(text);
  const body = (m ? m[2]! : text).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(body)) {
    throw new TesseraError('INVALID_SIGNATURE', 'not a signed Tessera document (truncated or corrupted?)');
  }
  return body;
}

export interface VerifyOptions {
  /** The tenant's public keys (GET /.well-known/jwks.json?tenant=<slug>), embedded in the application. */
  jwks: JSONWebKeySet;
  kind: TokenKind;
  /** The tenant (`iss`) the document must come from. */
  issuer?: string;
  /** This machine's fingerprint: the document must be bound to it. */
  fingerprint?: string;
  /** Defaults to the system clock. */
  now?: Date;
  /** The latest trustworthy time seen before: a clock earlier than this has been rolled back. */
  lastSeenTime?: Date;
  /** Refuse documents with a lower revision than one already installed (anti-rollback). */
  minRevision?: number;
  /** Use the portable Web Crypto path (jose) even where node:crypto is available (browsers always do). */
  webCrypto?: boolean;
}

export interface VerifiedDocument {
  payload: JWTPayload & Record<string, unknown>;
  kid: string | undefined;
}

/** The set of keys is built once per JWKS object: verification is then one Ed25519 check. */
const keySets = new WeakMap<JSONWebKeySet, ReturnType<typeof createLocalJWKSet>>();

// On Node (and runtimes that offer node:crypto), a synchronous Ed25519 verify with cached KeyObjects
// costs far less than Web Crypto's promise round trip; elsewhere jose with Web Crypto does the work.
type NodeCrypto = typeof import('node:crypto');
const nodeCrypto = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:crypto') as
  | NodeCrypto
  | undefined;
const nodeKeys = new WeakMap<JSONWebKeySet, { byKid: Map<string, import('node:crypto').KeyObject>; all: import('node:crypto').KeyObject[] }>();

function nodeKeysOf(jwks: JSONWebKeySet) {
  let keys = nodeKeys.get(jwks);
  if (!keys) {
    keys = { byKid: new Map(), all: [] };
    for (const k of jwks.keys) {
      // Only Ed25519 signing keys count; anything else in the set can never verify a document.
      if (k.kty !== 'OKP' || k.crv !== 'Ed25519' || (k.alg && k.alg !== 'EdDSA') || (k.use && k.use !== 'sig')) continue;
      const key = nodeCrypto!.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x as string }, format: 'jwk' });
      keys.all.push(key);
      if (k.kid) keys.byKid.set(k.kid, key);
    }
    nodeKeys.set(jwks, keys);
  }
  return keys;
}

function verifyWithNode(jws: string, header: ReturnType<typeof decodeProtectedHeader>, options: VerifyOptions, now: Date): JWTPayload {
  const bad = () => new TesseraError('INVALID_SIGNATURE', 'the signature does not verify under the tenant keys');
  // The algorithm is pinned: `none`, HS256 keyed with the public key and anything else are refused.
  if (header.alg !== 'EdDSA' || header.crit !== undefined || (header as { b64?: unknown }).b64 !== undefined) throw bad();
  const keys = nodeKeysOf(options.jwks);
  // As jose does: without a kid the document names no key, which is only unambiguous when there is one.
  const candidates = header.kid !== undefined ? [keys.byKid.get(header.kid)].filter((k) => k !== undefined) : keys.all.length === 1 ? keys.all : [];
  const dot = jws.lastIndexOf('.');
  const signingInput = Buffer.from(jws.slice(0, dot));
  const signature = Buffer.from(jws.slice(dot + 1), 'base64url');
  if (!candidates.some((k) => nodeCrypto!.verify(null, signingInput, k, signature))) throw bad();
  let payload: JWTPayload;
  try {
    payload = JSON.parse(Buffer.from(jws.slice(jws.indexOf('.') + 1, dot), 'base64url').toString('utf8')) as JWTPayload;
  } catch {
    throw bad();
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw bad();
  const seconds = now.getTime() / 1000;
  if (options.issuer !== undefined && payload.iss !== options.issuer) throw new TesseraError('INVALID_SIGNATURE', 'claim "iss" is not acceptable');
  // Time claims of another type are refused as jose refuses them (JWTClaimValidationFailed), not ignored.
  for (const claim of ['exp', 'iat'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'number') throw new TesseraError('INVALID_SIGNATURE', `claim "${claim}" is not acceptable`);
  }
  if (payload.exp !== undefined && payload.exp <= seconds - SKEW_SECONDS) {
    throw new TesseraError('LICENSE_EXPIRED', 'the license has expired');
  }
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > seconds + SKEW_SECONDS)) {
    throw new TesseraError('LICENSE_NOT_YET_VALID', 'the license is not valid yet');
  }
  return payload;
}

async function verifyWithJose(jws: string, typ: string, options: VerifyOptions, now: Date): Promise<JWTPayload> {
  let keys = keySets.get(options.jwks);
  if (!keys) {
    keys = createLocalJWKSet(options.jwks);
    keySets.set(options.jwks, keys);
  }
  try {
    const { payload } = await jwtVerify(jws, keys, {
      algorithms: ['EdDSA'],
      typ,
      issuer: options.issuer,
      currentDate: now,
      clockTolerance: SKEW_SECONDS,
    });
    return payload;
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw new TesseraError('LICENSE_EXPIRED', 'the license has expired');
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === 'nbf') throw new TesseraError('LICENSE_NOT_YET_VALID', 'the license is not valid yet');
      throw new TesseraError('INVALID_SIGNATURE', `claim "${err.claim}" is not acceptable`);
    }
    throw new TesseraError('INVALID_SIGNATURE', 'the signature does not verify under the tenant keys');
  }
}

/**
 * Verifies a signed Tessera document offline: Ed25519 signature under the tenant's keys (alg and typ
 * pinned, so `alg: none`, HS256 tricks and documents of another kind are refused), then expiry,
 * fingerprint binding, revision and clock rollback, each with its own typed reason.
 */
export async function verifyDocument(document: string, options: VerifyOptions): Promise<VerifiedDocument> {
  // Embedded by the vendor's app: a wrong value there is its bug, said as such rather than as a TypeError.
  if (typeof options.jwks !== 'object' || options.jwks === null || !Array.isArray(options.jwks.keys)) {
    throw new TesseraError('INVALID_SIGNATURE', 'the public keys given are not a key set ({"keys": [...]}, from /.well-known/jwks.json?tenant=<slug>)');
  }
  const jws = unarmor(document);
  const now = options.now ?? new Date();
  if (options.lastSeenTime && now.getTime() + SKEW_SECONDS * 1000 < options.lastSeenTime.getTime()) {
    throw new TesseraError('CLOCK_ROLLBACK', `the system clock (${now.toISOString()}) is earlier than a time already seen (${options.lastSeenTime.toISOString()})`);
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw new TesseraError('INVALID_SIGNATURE', 'the document header cannot be read');
  }
  const typ = TOKEN_TYPES[options.kind];
  if (header.typ !== typ) throw new TesseraError('WRONG_TOKEN_TYPE', `expected a ${typ} document, got ${String(header.typ)}`);
  const payload = nodeCrypto && !options.webCrypto ? verifyWithNode(jws, header, options, now) : await verifyWithJose(jws, typ, options, now);
  if (typeof payload.iat === 'number' && now.getTime() / 1000 + SKEW_SECONDS < payload.iat) {
    throw new TesseraError('CLOCK_ROLLBACK', 'the system clock is earlier than the time the document was issued');
  }
  if (options.fingerprint !== undefined && payload.fingerprint !== undefined && payload.fingerprint !== options.fingerprint) {
    throw new TesseraError('FINGERPRINT_MISMATCH', 'the document is bound to another machine');
  }
  if (options.minRevision !== undefined && typeof payload.revision === 'number' && payload.revision < options.minRevision) {
    throw new TesseraError('INVALID_SIGNATURE', `revision ${payload.revision} is older than the installed revision ${options.minRevision}`);
  }
  return { payload: payload as VerifiedDocument['payload'], kid: header.kid };
}

/** Verifies an offline license file (`-----BEGIN TESSERA LICENSE-----`). */
export function verifyLicenseFile(file: string, options: Omit<VerifyOptions, 'kind'>): Promise<VerifiedDocument> {
  return verifyDocument(file, { ...options, kind: 'license' });
}
