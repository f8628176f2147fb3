import { createHash, randomInt } from 'node:crypto';

// Crockford's base32: no I, L, O or U, so keys survive being read aloud and retyped.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const KEY = /^(LIC|TOK)-([0-9A-HJKMNP-TV-Z]{4})-([0-9A-HJKMNP-TV-Z]{12})-([0-9A-HJKMNP-TV-Z]{4})$/;

export type KeyKind = 'LIC' | 'TOK';

function randomGroup(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALPHABET[randomInt(32)];
  return s;
}

/** Four base32 digits (20 bits) of SHA-256 over the prefix and body: any single typo changes them. */
function checksum(kind: KeyKind, body: string): string {
  const digest = createHash('sha256').update(`${kind}-${body}`).digest();
  const n = ((digest[0]! << 12) | (digest[1]! << 4) | (digest[2]! >> 4)) >>> 0;
  let s = '';
  for (let shift = 15; shift >= 0; shift -= 5) s += ALPHABET[(n >> shift) & 31];
  return s;
}

/** `LIC-XXXX-XXXXXXXXXXXX-XXXX`: 80 random bits from the CSPRNG and a 20-bit check group. */
export function generateKey(kind: KeyKind): string {
  const a = randomGroup(4);
  const b = randomGroup(12);
  return `${kind}-${a}-${b}-${checksum(kind, a + b)}`;
}

/** Upper-cases and trims what a person typed; common look-alikes map to their digits. */
export function normalizeKey(input: string): string {
  const upper = input.trim().toUpperCase();
  const dash = upper.indexOf('-');
  if (dash < 0) return upper;
  return upper.slice(0, dash + 1) + upper.slice(dash + 1).replace(/[OIL]/g, (c) => (c === 'O' ? '0' : '1'));
}

/** Whether a key is well-formed (shape and check group), decided without touching the database. */
export function parseKey(input: string): { kind: KeyKind; key: string } | null {
  if (input.length > 64) return null;
  const key = normalizeKey(input);
  const m = KEY.exec(key);
  if (!m) return null;
  const kind = m[1] as KeyKind;
  if (checksum(kind, m[2]! + m[3]!) !== m[4]) return null;
  return { kind, key };
}
