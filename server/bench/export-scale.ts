/**
 * Export at scale: N audit rows for one tenant on PostgreSQL, streamed over HTTP as JSON lines;
 * reports rows, seconds and the server's peak RSS growth (the export must not hold the rows).
 *
 *   tsx bench/export-scale.ts [--rows 1000000]
 */
import { parseArgs } from 'node:util';
import { openDatabase } from '@tessera/db/database';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createTenant } from '../src/modules/tenants/service.ts';
import { freshPostgres } from '../test/harness.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' } } });
const ROWS = Number(values.rows);
const fresh = await freshPostgres(process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
const db = await openDatabase({ url: fresh.url, poolSize: 5 });
const app = await buildApp({ config: { ...loadConfig({ NODE_ENV: 'test' }), seedDemo: false }, db });
const { tenant, adminToken } = await createTenant({ app: app.deps, prisma: app.deps.prisma, actor: { kind: 'anonymous' }, requestId: 'x' }, { slug: 'scale' });
await db.sql.query(
  `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId", payload, "occurredAt", seq)
   SELECT $1::uuid, 'bulk.recorded', 'system', 'Thing', 'thing-' || g, jsonb_build_object('n', g), TIMESTAMP '2026-01-01' + g * interval '1 second', 1000000000 + g
   FROM generate_series(1, $2::int) AS g`,
  [tenant.id, ROWS],
);
// As autovacuum would after a bulk load: without statistics the planner sorts instead of walking the index.
await db.sql.query('ANALYZE "AuditEvent"');
await new Promise<void>((r) => app.server.listen(0, '127.0.0.1', r));
const port = (app.server.address() as { port: number }).port;
global.gc?.();
const base = process.memoryUsage().rss;
let peak = base;
const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
const started = performance.now();
const res = await fetch(`http://127.0.0.1:${port}/audit/export?format=jsonl&from=2025-12-31T00:00:00Z`, { headers: { authorization: `Bearer ${adminToken}` } });
let lines = 0;
const decoder = new TextDecoder();
for await (const chunk of res.body! as unknown as AsyncIterable<Uint8Array>) for (const ch of decoder.decode(chunk, { stream: true })) if (ch === '\n') lines++;
clearInterval(timer);
console.log(JSON.stringify({ rows: lines, seconds: ((performance.now() - started) / 1000).toFixed(1), rssGrowthMB: ((peak - base) / 2 ** 20).toFixed(0) }));
await app.stop();
await db.close();
await fresh.drop();
process.exit(0);
