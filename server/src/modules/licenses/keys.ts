import { randomInt } from 'node:crypto';

// Crockford's base32: no I, L, O or U, so keys survive being read aloud and retyped.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const KEY = /^(LIC|TOK)-([0-9A-HJKMNP-TV-Z]{4})-([0-9A-HJKMNP-TV-Z]{12})-([0-9A-HJKMNP-TV-Z]{4})$/;

export type KeyKind = 'LIC' | 'TOK';

function randomGroup(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALPHABET[randomInt(32)];
  return s;
}

// The check group is a Reed-Solomon code over GF(32) (4 parity symbols, minimum distance 5): any
// one to four changed characters, and so any swap of two characters, can never yield another valid
// key. A per-kind constant is added so a TOK key with its prefix changed to LIC is malformed too,
// and so is the all-zero key.
const EXP: number[] = [];
const LOG: number[] = [];
for (let i = 0, x = 1; i < 31; i++) {
  EXP[i] = EXP[i + 31] = x;
  LOG[x] = i;
  x <<= 1;
  if (x & 32) x ^= 0b100101; // x^5 + x^2 + 1, primitive
}
const mul = (a: number, b: number) => (a && b ? EXP[LOG[a]! + LOG[b]!]! : 0);
/** (x + a)(x + a^2)(x + a^3)(x + a^4), highest degree first. */
const GENERATOR = [1, 2, 3, 4].reduce<number[]>(
  (g, i) => {
    const next = new Array<number>(g.length + 1).fill(0);
    g.forEach((c, j) => {
      next[j] = next[j]! ^ c;
      next[j + 1] = next[j + 1]! ^ mul(c, EXP[i]!);
    });
    return next;
  },
  [1],
);
const KIND_MASK: Record<KeyKind, number[]> = { LIC: [9, 27, 4, 18], TOK: [21, 7, 30, 12] };

function checksum(kind: KeyKind, body: string): string {
  const r = [0, 0, 0, 0];
  for (const ch of body) {
    const f = ALPHABET.indexOf(ch) ^ r[0]!;
    r.shift();
    r.push(0);
    for (let j = 0; j < 4; j++) r[j] = r[j]! ^ mul(GENERATOR[j + 1]!, f);
  }
  return r.map((v, j) => ALPHABET[v ^ KIND_MASK[kind][j]!]).join('');
}

/** `LIC-XXXX-XXXXXXXXXXXX-XXXX`: 80 random bits from the CSPRNG and a 4-character check group. */
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
