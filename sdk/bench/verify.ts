/**
 * Offline verification cost: `verifyLicenseFile` (unarmor, header and typ checks, Ed25519 verify with
 * the tenant's cached key set, claim checks) as a ratio of a raw Ed25519 verify of the same bytes with
 * node:crypto. Rounds alternate between the two so machine noise hits both alike; medians reported.
 *
 *   pnpm --filter @tessera/sdk bench [--json]   (`pnpm bench` at the root runs it with --json for its table)
 */
import { createPublicKey, verify } from 'node:crypto';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { verifyLicenseFile } from '../src/verify.ts';

const ROUNDS = 15;
const PER_ROUND = 2000;

const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'EdDSA', use: 'sig' };
const jwks = { keys: [jwk] };
const jws = await new SignJWT({ fingerprint: 'bench-machine', revision: 7, features: ['a', 'b', 'c'], meters: [{ meter: 'm', quota: 10, period: 'MONTH' }] })
  .setProtectedHeader({ alg: 'EdDSA', typ: 'tessera-license+jwt', kid: 'bench' })
  .setIssuer('acme')
  .setSubject('license-1')
  .setIssuedAt()
  .setExpirationTime('1y')
  .sign(privateKey);
const file = `-----BEGIN TESSERA LICENSE-----\n${jws.replace(/.{1,64}/g, '$&\n')}-----END TESSERA LICENSE-----\n`;

const [h, p, sig] = jws.split('.') as [string, string, string];
const signingInput = Buffer.from(`${h}.${p}`);
const signature = Buffer.from(sig, 'base64url');
const keyObject = createPublicKey({ key: jwk as never, format: 'jwk' });

const options = { jwks, issuer: 'acme', fingerprint: 'bench-machine' };
await verifyLicenseFile(file, options); // warm the cached key set

const perOp = { sdk: [] as number[], raw: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  let t = performance.now();
  for (let i = 0; i < PER_ROUND; i++) {
    if (!verify(null, signingInput, keyObject, signature)) throw new Error('raw verify failed');
  }
  perOp.raw.push(((performance.now() - t) * 1000) / PER_ROUND);
  t = performance.now();
  for (let i = 0; i < PER_ROUND; i++) await verifyLicenseFile(file, options);
  perOp.sdk.push(((performance.now() - t) * 1000) / PER_ROUND);
}
// Latency of single calls, for p50/p99 (each timed alone; the rounds above give the steady cost).
const single: number[] = [];
for (let i = 0; i < PER_ROUND; i++) {
  const t = performance.now();
  await verifyLicenseFile(file, options);
  single.push((performance.now() - t) * 1000);
}
single.sort((a, b) => a - b);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sdk = median(perOp.sdk);
const raw = median(perOp.raw);
if (parseArgs({ options: { json: { type: 'boolean', default: false } } }).values.json) {
  const at = (p: number) => single[Math.min(single.length - 1, Math.floor((p / 100) * single.length))]!;
  console.log(JSON.stringify({ rawMicros: raw, verifyMicros: sdk, ratio: sdk / raw, p50Micros: at(50), p99Micros: at(99) }));
  process.exit(0);
}
console.log('| scenario | µs per verify | ratio to raw Ed25519 |');
console.log('|---|---:|---:|');
console.log(`| raw Ed25519 verify (node:crypto) | ${raw.toFixed(1)} | 1.00x |`);
console.log(`| verifyLicenseFile (cached keys) | ${sdk.toFixed(1)} | ${(sdk / raw).toFixed(2)}x |`);
