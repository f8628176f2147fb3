import { describe, expect, it } from 'vitest';
import { generateKey, normalizeKey, parseKey } from './keys.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const SHAPE = /^(LIC|TOK)-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{12}-[0-9A-HJKMNP-TV-Z]{4}$/;
const positions = (key: string) => [...key].map((_, i) => i).filter((i) => i >= 4 && key[i] !== '-');

describe('license keys', () => {
  it('generates well-formed, distinct keys of both kinds', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      for (const kind of ['LIC', 'TOK'] as const) {
        const key = generateKey(kind);
        expect(key).toMatch(SHAPE);
        expect(key.startsWith(`${kind}-`)).toBe(true);
        expect(parseKey(key)).toEqual({ kind, key });
        seen.add(key);
      }
    }
    expect(seen.size).toBe(1000);
  });

  it('detects every single changed character and every swap of two characters', () => {
    for (let n = 0; n < 100; n++) {
      const key = generateKey(n % 2 ? 'LIC' : 'TOK');
      for (const i of positions(key)) {
        for (const c of ALPHABET) {
          if (c === key[i]) continue;
          const typo = key.slice(0, i) + c + key.slice(i + 1);
          expect(parseKey(typo), `${key} -> ${typo}`).toBeNull();
        }
        for (const j of positions(key)) {
          if (j <= i || key[i] === key[j]) continue;
          const swapped = [...key];
          [swapped[i], swapped[j]] = [swapped[j]!, swapped[i]!];
          expect(parseKey(swapped.join('')), `${key} swap ${i},${j}`).toBeNull();
        }
      }
    }
  });

  it('a token key relabelled as a license key (or back) is malformed', () => {
    for (let n = 0; n < 200; n++) {
      const tok = generateKey('TOK');
      expect(parseKey(`LIC${tok.slice(3)}`)).toBeNull();
      const lic = generateKey('LIC');
      expect(parseKey(`TOK${lic.slice(3)}`)).toBeNull();
    }
  });

  it('normalises lowercase, surrounding space and look-alike letters', () => {
    const key = generateKey('LIC');
    expect(parseKey(`  ${key.toLowerCase()}\n`)).toEqual({ kind: 'LIC', key });
    // O -> 0, I and L -> 1: what people type for those digits.
    expect(normalizeKey('lic-oOiI-lLoO1100iiab')).toBe('LIC-0011-1100110011AB');
    const candidate = generateKey('LIC');
    const typed = candidate.slice(0, 4) + candidate.slice(4).replace(/0/g, 'o').replace(/1/g, 'l');
    expect(parseKey(typed)).toEqual({ kind: 'LIC', key: candidate });
  });

  it('rejects malformed input without throwing', () => {
    const key = generateKey('LIC');
    for (const bad of [
      '',
      'LIC',
      key.slice(0, -1),
      `${key}0`,
      key.replace(/-/g, ''),
      key.replace('LIC', 'KEY'),
      `${key.slice(0, 5)}U${key.slice(6)}`,
      'LIC-0000-000000000000-0000',
      'TOK-0000-000000000000-0000',
      `${key} ${key}`,
      key + 'x'.repeat(10_000),
      '\u0000'.repeat(30),
    ]) {
      expect(parseKey(bad), bad.slice(0, 40)).toBeNull();
    }
  });
});
