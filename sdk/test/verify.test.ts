import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type KeyLike } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { TesseraError } from '../src/errors.ts';
import { unarmor, verifyDocument as verifyDoc, verifyLicenseFile as verifyFile } from '../src/verify.ts';

let key: KeyLike;
let jwks: JSONWebKeySet;
let otherKey: KeyLike;
let otherJwks: JSONWebKeySet;

async function keyset(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return { privateKey, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' }] } };
}

beforeAll(async () => {
  ({ privateKey: key, jwks } = await keyset('k1'));
  ({ privateKey: otherKey, jwks: otherJwks } = await keyset('k2'));
});

function sign(claims: Record<string, unknown>, opts: { typ?: string; kid?: string; exp?: number; iat?: number; signer?: KeyLike } = {}) {
  const jwt = new SignJWT({ fingerprint: 'fp-1', revision: 3, features: ['a'], ...claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: opts.typ ?? 'tessera-license+jwt', kid: opts.kid ?? 'k1' })
    .setIssuer('acme')
    .setSubject('lic-1')
    .setIssuedAt(opts.iat);
  if (opts.exp) jwt.setExpirationTime(opts.exp);
  return jwt.sign(opts.signer ?? key);
}

const armor = (jws: string) => `-----BEGIN TESSERA LICENSE-----\n${jws.replace(/.{1,64}/g, '$&\n')}-----END TESSERA LICENSE-----\n`;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    expect(err).toBeInstanceOf(TesseraError);
    return (err as TesseraError).code;
  }
}

describe.each([
  { engine: 'node:crypto', webCrypto: false },
  { engine: 'Web Crypto (jose), as in browsers', webCrypto: true },
])('verifyLicenseFile with $engine', ({ webCrypto }) => {
  const verifyLicenseFile = (file: string, o: Parameters<typeof verifyFile>[1]) => verifyFile(file, { ...o, webCrypto });
  const verifyDocument = (doc: string, o: Parameters<typeof verifyDoc>[1]) => verifyDoc(doc, { ...o, webCrypto });

  it('accepts an armored license file bound to this machine', async () => {
    const file = armor(await sign({}));
    const { payload, kid } = await verifyLicenseFile(file, { jwks, issuer: 'acme', fingerprint: 'fp-1' });
    expect(payload.sub).toBe('lic-1');
    expect(kid).toBe('k1');
    expect(unarmor(file)).not.toContain('\n');
  });

  it('says keys that are no key set are not, as a TesseraError', async () => {
    const file = armor(await sign({}));
    for (const bad of [{}, { keys: 'x' }, null]) {
      expect(await code(verifyLicenseFile(file, { jwks: bad as unknown as JSONWebKeySet, issuer: 'acme', fingerprint: 'fp-1' }))).toBe('INVALID_SIGNATURE');
    }
  });

  it('refuses a flipped byte anywhere in the payload or signature', async () => {
    const jws = await sign({});
    const [h, p, s] = jws.split('.') as [string, string, string];
    const flip = (x: string, i: number) => x.slice(0, i) + (x[i] === 'A' ? 'B' : 'A') + x.slice(i + 1);
    expect(await code(verifyLicenseFile(`${h}.${flip(p, 10)}.${s}`, { jwks }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile(`${h}.${p}.${flip(s, 5)}`, { jwks }))).toBe('INVALID_SIGNATURE');
  });

  it('refuses alg none and HS256 keyed with the public key', async () => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const payload = enc({ iss: 'acme', sub: 'lic-1', fingerprint: 'fp-1', iat: Math.floor(Date.now() / 1000) });
    const none = `${enc({ alg: 'none', typ: 'tessera-license+jwt' })}.${payload}.`;
    expect(await code(verifyLicenseFile(none, { jwks }))).toBe('INVALID_SIGNATURE');
    const { createHmac } = await import('node:crypto');
    const header = enc({ alg: 'HS256', typ: 'tessera-license+jwt', kid: 'k1' });
    const mac = createHmac('sha256', JSON.stringify(jwks.keys[0])).update(`${header}.${payload}`).digest('base64url');
    expect(await code(verifyLicenseFile(`${header}.${payload}.${mac}`, { jwks }))).toBe('INVALID_SIGNATURE');
  });

  it('refuses a lease or activation token presented as a license file', async () => {
    expect(await code(verifyLicenseFile(await sign({}, { typ: 'tessera-lease+jwt' }), { jwks }))).toBe('WRONG_TOKEN_TYPE');
    expect(await code(verifyLicenseFile(await sign({}, { typ: 'tessera-activation+jwt' }), { jwks }))).toBe('WRONG_TOKEN_TYPE');
  });

  it("refuses another tenant's file and a file signed by another key", async () => {
    expect(await code(verifyLicenseFile(await sign({}, { signer: otherKey, kid: 'k2' }), { jwks }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile(await sign({}), { jwks: otherJwks }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile(await sign({}), { jwks, issuer: 'globex' }))).toBe('INVALID_SIGNATURE');
  });

  it('refuses truncated and oversized files', async () => {
    const jws = await sign({});
    expect(await code(verifyLicenseFile(jws.slice(0, jws.length - 20), { jwks }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile(jws.split('.').slice(0, 2).join('.'), { jwks }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile('x'.repeat(5 * 1024 * 1024), { jwks }))).toBe('INVALID_SIGNATURE');
  });

  it('checks expiry, fingerprint binding, revision and clock rollback', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await code(verifyLicenseFile(await sign({}, { exp: now - 3600, iat: now - 7200 }), { jwks }))).toBe('LICENSE_EXPIRED');
    expect(await code(verifyLicenseFile(await sign({}), { jwks, fingerprint: 'another-machine' }))).toBe('FINGERPRINT_MISMATCH');
    expect(await code(verifyLicenseFile(await sign({}), { jwks, minRevision: 4 }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile(await sign({}), { jwks, minRevision: 3 }))).toBe('OK');
    // The clock was set back a day after a later time had been seen.
    expect(await code(verifyLicenseFile(await sign({}, { iat: now - 86400 * 3 }), { jwks, now: new Date(Date.now() - 86400_000), lastSeenTime: new Date() }))).toBe('CLOCK_ROLLBACK');
    // A file issued "in the future" relative to this clock: the clock is behind the issuer's.
    expect(await code(verifyLicenseFile(await sign({}, { iat: now + 86400 }), { jwks }))).toBe('CLOCK_ROLLBACK');
  });

  it('refuses, the same way on both engines, a document without kid under several keys and claims of the wrong type', async () => {
    const both: JSONWebKeySet = { keys: [...jwks.keys, ...otherJwks.keys] };
    const noKid = (signer: KeyLike) => new SignJWT({ fingerprint: 'fp-1' }).setProtectedHeader({ alg: 'EdDSA', typ: 'tessera-license+jwt' }).setIssuer('acme').setIssuedAt().sign(signer);
    const raw = (claims: Record<string, unknown>) => new SignJWT({ iss: 'acme', fingerprint: 'fp-1', ...claims }).setProtectedHeader({ alg: 'EdDSA', typ: 'tessera-license+jwt', kid: 'k1' }).sign(key);
    expect(await code(verifyLicenseFile(await noKid(key), { jwks: both }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile(await noKid(otherKey), { jwks: both }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile(await noKid(key), { jwks }))).toBe('OK'); // one key: it is the one
    const now = Math.floor(Date.now() / 1000);
    expect(await code(verifyLicenseFile(await raw({ iat: now, exp: String(now + 3600) }), { jwks }))).toBe('INVALID_SIGNATURE');
    expect(await code(verifyLicenseFile(await raw({ iat: String(now + 86400 * 10) }), { jwks }))).toBe('INVALID_SIGNATURE');
  });

  it('verifies activation tokens only as activation tokens', async () => {
    const token = await sign({}, { typ: 'tessera-activation+jwt' });
    expect(await code(verifyDocument(token, { jwks, kind: 'activation', fingerprint: 'fp-1' }))).toBe('OK');
    expect(await code(verifyDocument(token, { jwks, kind: 'lease' }))).toBe('WRONG_TOKEN_TYPE');
  });
});
