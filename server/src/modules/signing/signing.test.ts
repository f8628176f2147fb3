import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { masterKeyFile, parseMasterKey, seal, unseal } from './service.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'tessera-key-'));
  dirs.push(d);
  return d;
};

describe('master key', () => {
  it('accepts 32 bytes as hex or base64 and refuses anything else', () => {
    const raw = randomBytes(32);
    expect(parseMasterKey(raw.toString('hex'))).toEqual(raw);
    expect(parseMasterKey(raw.toString('base64'))).toEqual(raw);
    expect(parseMasterKey(raw.toString('base64url'))).toEqual(raw);
    for (const bad of ['', 'secret', randomBytes(16).toString('hex'), randomBytes(31).toString('base64')]) {
      expect(() => parseMasterKey(bad)).toThrow(/TESSERA_MASTER_KEY/);
    }
  });

  it('generates <dataDir>/master.key once, mode 0600, and reads it back', () => {
    const dir = path.join(tempDir(), 'data');
    const first = masterKeyFile(dir);
    expect(first.created).toBe(true);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    const second = masterKeyFile(dir);
    expect(second.created).toBe(false);
    expect(second.key).toEqual(first.key);
  });

  it('tightens a key file readable by others', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'master.key'), randomBytes(32).toString('base64'), { mode: 0o644 });
    masterKeyFile(dir);
    expect(statSync(path.join(dir, 'master.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'master.key'), 'utf8').length).toBeGreaterThan(40);
  });
});

describe('private key encryption (AES-256-GCM)', () => {
  const key = randomBytes(32);
  it('round-trips and binds the ciphertext to its kid and master key', () => {
    const sealed = seal(key, 'pkcs8 text', 'kid-1');
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain('pkcs8');
    expect(unseal(key, sealed, 'kid-1')).toBe('pkcs8 text');
    expect(() => unseal(key, sealed, 'kid-2')).toThrow(/cannot decrypt/);
    expect(() => unseal(randomBytes(32), sealed, 'kid-1')).toThrow(/cannot decrypt/);
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0]! ^= 1;
    parts[3] = body.toString('base64url');
    expect(() => unseal(key, parts.join('.'), 'kid-1')).toThrow(/cannot decrypt/);
  });
});
