import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from './event-types.ts';

/*
 * EVENT_TYPES is what webhook subscriptions are checked against and what the console offers as hints.
 * emit() only takes its names (a type error otherwise), but several hot paths and sweeps write audit rows
 * in SQL, where a type is a string literal the compiler cannot see. This reads every server source file
 * for such literals ('<resource>.<action>') and fails on one the list lacks.
 */

const src = path.resolve(import.meta.dirname, '../..');

/** Dotted literals in the sources that are not event types. */
const NOT_EVENTS = new Set([
  'index.html', // the console's entry
  'jwks.json', // /.well-known/jwks.json
  'license.lic', // an offline license file's name
  'master.key', // the generated master key's file
  'webhook.test', // the test delivery's type: sent whatever an endpoint subscribes to, never audited
  'input.key', // GraphQL error paths and SQL aliases
  'lic.seats',
  'q.activating',
  'q.fp',
  'r.at',
]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : [];
  });
}

describe('the event types list', () => {
  it('holds every event type the server writes', () => {
    const literal = /['"`]([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)['"`]/g;
    const found = new Map<string, string>();
    for (const file of sources(src)) {
      for (const m of readFileSync(file, 'utf8').matchAll(literal)) {
        if (!NOT_EVENTS.has(m[1]!) && !found.has(m[1]!)) found.set(m[1]!, path.relative(src, file));
      }
    }
    // The scan does see the SQL-written ones (a guard against the scan itself going blind).
    expect(found.get('lease.renewed')).toBeDefined();
    expect(found.get('compliance.heartbeat_timeout')).toBeDefined();
    const listed = new Set<string>(EVENT_TYPES);
    const missing = [...found].filter(([type]) => !listed.has(type)).map(([type, file]) => `${type} (${file})`);
    expect(missing, 'add these to EVENT_TYPES, or to NOT_EVENTS above if they are not event types').toEqual([]);
  });

  it('lists each type once, in "<resource>.<action>" form', () => {
    expect(new Set(EVENT_TYPES).size).toBe(EVENT_TYPES.length);
    for (const t of EVENT_TYPES) expect(t).toMatch(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/);
  });
});
