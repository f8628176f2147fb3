import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Database, openDatabase } from '@tessera/db/database';
import { openEmbedded } from '@tessera/db/embedded';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgres, openTestDatabase, testDatabaseUrl } from './harness.ts';
import { Proxy } from './proxy.ts';

/*
 * The raw SQL channel's named statements (the hot paths' batched statements run through them): on
 * PostgreSQL a prepared statement per pooled connection, on PGlite one per session sent straight to the
 * backend (prisma/pglite-prepared.ts), which must interleave safely with Prisma and transactions.
 */

let db: Database;
let closeDb: () => Promise<void>;

beforeAll(async () => {
  ({ db, close: closeDb } = await openTestDatabase(6));
  await db.sql.exec(`CREATE TABLE t (id int PRIMARY KEY, tag text, at timestamp(3), doc jsonb, big bigint)`);
});
afterAll(() => closeDb());

const UPSERT = `INSERT INTO t (id, tag, at, doc, big) SELECT * FROM unnest($1::int[], $2::text[], $3::timestamp(3)[], $4::jsonb[], $5::bigint[])
                ON CONFLICT (id) DO UPDATE SET tag = EXCLUDED.tag RETURNING id`;
const READ = `SELECT id, ARRAY[tag, 'x'] AS tags, to_json(at)#>>'{}' AS at, doc, big::text AS big FROM t WHERE id = ANY($1::int[]) ORDER BY id`;

describe('named statements', () => {
  it('bind arrays, nulls, timestamps, JSON and bigints, and parse what comes back', async () => {
    const tag = 'a "quoted", {braced} \\ back-slashed';
    await db.sql.query(UPSERT, [[1, 2], [tag, null], ['2026-12-01T10:00:00.123Z', null], ['{"k":[1,"é"]}', null], ['9007199254740993', null]], 'test_upsert');
    const rows = await db.sql.query<{ id: number; tags: (string | null)[]; at: string | null; doc: unknown; big: string | null }>(READ, [[1, 2]], 'test_read');
    expect(rows).toEqual([
      { id: 1, tags: [tag, 'x'], at: '2026-12-01T10:00:00.123', doc: { k: [1, 'é'] }, big: '9007199254740993' },
      { id: 2, tags: [null, 'x'], at: null, doc: null, big: null },
    ]);
    // Run again: the prepared statement is reused.
    expect(await db.sql.query(READ, [[2]], 'test_read')).toHaveLength(1);
  });

  // A pooled PostgreSQL connection that never ran the name cannot know; pg refuses it on one that did.
  it.runIf(!testDatabaseUrl)('refuse a second text under one name', async () => {
    await expect(db.sql.query(`SELECT 2 AS x`, [], 'test_read')).rejects.toThrow();
  });

  it('report SQL errors and leave the channel usable', async () => {
    await expect(db.sql.query(`SELECT 1 / $1::int AS x`, [0], 'test_div')).rejects.toThrow(/division by zero/);
    expect(await db.sql.query<{ x: number }>(`SELECT 1 / $1::int AS x`, [1], 'test_div')).toEqual([{ x: 1 }]);
  });

  it('interleave with Prisma, plain queries and transactions without mixing them up', async () => {
    const rolledBack = db.transaction(async (sql) => {
      await sql.query(UPSERT, [[100], ['tx'], [null], [null], [null]], 'test_upsert');
      // Others run meanwhile; none may see this row or land inside this transaction.
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('roll back');
    });
    const others = Array.from({ length: 60 }, async (_, i) => {
      const id = 200 + i;
      if (i % 3 === 0) await db.sql.query(UPSERT, [[id], ['n'], [null], [null], [null]], 'test_upsert');
      else if (i % 3 === 1) await db.sql.query(`INSERT INTO t (id) VALUES ($1)`, [id]);
      else await db.prisma.$executeRawUnsafe(`INSERT INTO t (id) VALUES (${id})`);
      return (await db.sql.query<{ id: number }>(READ, [[id]], 'test_read'))[0]?.id;
    });
    await expect(rolledBack).rejects.toThrow('roll back');
    expect(await Promise.all(others)).toEqual(Array.from({ length: 60 }, (_, i) => 200 + i));
    expect(await db.sql.query(READ, [[100]], 'test_read')).toEqual([]);
  });

  // PGlite has one session, shared with socket clients (the operator CLI), one of which may clear it.
  it.runIf(!testDatabaseUrl)('are prepared again when the PGlite session loses them', async () => {
    await db.sql.query(READ, [[1]], 'test_read');
    await db.sql.exec('DEALLOCATE ALL');
    const results = await Promise.all(Array.from({ length: 8 }, () => db.sql.query<{ id: number }>(READ, [[1]], 'test_read')));
    expect(results.map((r) => r.length)).toEqual(Array(8).fill(1));
  });
});

// The operator CLI reaches a running server's PGlite through pglite-socket, in the same session.
describe.runIf(!testDatabaseUrl)('named statements on PGlite beside a socket client', () => {
  it('answer right after the socket client spoke', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-socket-'));
    const embedded = await openEmbedded(dir, { serveSocket: true });
    try {
      const { db } = embedded;
      await db.sql.exec(`CREATE TABLE s (id int PRIMARY KEY)`);
      await db.sql.query(`INSERT INTO s SELECT g FROM generate_series(1, 10) g`);
      const read = () => db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM s WHERE id <= $1::int`, [5], 'test_socket_read');
      expect(await read()).toEqual([{ n: 5 }]);
      for (let round = 0; round < 3; round++) {
        const cli = await openDatabase({ socketDir: dir });
        expect(await cli.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM s`)).toEqual([{ n: 10 }]);
        await cli.close();
        expect(await read()).toEqual([{ n: 5 }]);
        // pglite-socket takes the next client once it has let go of this one.
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await embedded.release();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// PGlite has one session: a socket client's transaction and the server's own work take turns on it.
describe.runIf(!testDatabaseUrl)('a socket client and the server on one PGlite session', () => {
  let dir: string;
  let embedded: Awaited<ReturnType<typeof openEmbedded>>;
  let cli: pg.Client;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tessera-socket-'));
    embedded = await openEmbedded(dir, { serveSocket: true });
    await embedded.db.sql.exec(`CREATE TABLE w (id int PRIMARY KEY, who text)`);
  });
  afterAll(async () => {
    await embedded.release();
    rmSync(dir, { recursive: true, force: true });
  });
  const connect = async () => {
    cli = new pg.Client({ host: dir, user: 'postgres', database: 'postgres' });
    await cli.connect();
  };
  const rows = async () => (await embedded.db.sql.query<{ id: number }>(`SELECT id FROM w ORDER BY id`)).map((r) => r.id);
  const settled = (p: Promise<unknown>) => Promise.race([p.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 300))]);

  it('a server write waits for the client\'s open transaction, and is kept when the client rolls back', async () => {
    await connect();
    try {
      await cli.query('BEGIN');
      await cli.query(`INSERT INTO w VALUES (1, 'cli')`);
      const server = [
        embedded.db.sql.query(`INSERT INTO w VALUES (2, 'server')`),
        embedded.db.sql.query(`INSERT INTO w SELECT 3, 'server' RETURNING id`, [], 'test_socket_write'),
        embedded.db.prisma.$executeRawUnsafe(`INSERT INTO w VALUES (4, 'server')`),
      ];
      expect(await settled(Promise.all(server))).toBe('waiting');
      await cli.query('ROLLBACK');
      await Promise.all(server);
      expect(await rows()).toEqual([2, 3, 4]);
    } finally {
      await cli.end();
      await embedded.db.sql.exec('DELETE FROM w');
    }
  });

  it('a server transaction neither commits the client\'s half-done transaction nor takes its statements', async () => {
    await connect();
    try {
      await cli.query('BEGIN');
      await cli.query(`INSERT INTO w VALUES (1, 'cli')`);
      const server = embedded.db.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`INSERT INTO w VALUES (2, 'server')`);
      });
      expect(await settled(server)).toBe('waiting');
      await cli.query('ROLLBACK');
      await server;
      expect(await rows()).toEqual([2]);

      // The other way round: the client's statement waits for the server's transaction, which rolls back.
      let inside!: () => void;
      const entered = new Promise<void>((r) => (inside = r));
      let finish!: () => void;
      const failing = embedded.db.transaction(async (sql) => {
        await sql.query(`INSERT INTO w VALUES (3, 'server')`);
        inside();
        await new Promise<void>((r) => (finish = r));
        throw new Error('roll back');
      });
      await entered;
      const client = cli.query(`INSERT INTO w VALUES (5, 'cli')`);
      expect(await settled(client)).toBe('waiting');
      finish();
      await expect(failing).rejects.toThrow('roll back');
      await client;
      expect(await rows()).toEqual([2, 5]);
    } finally {
      await cli.end();
      await embedded.db.sql.exec('DELETE FROM w');
    }
  });

  it('a client that goes in the middle of a transaction has it rolled back, and the server goes on', async () => {
    await connect();
    await cli.query('BEGIN');
    await cli.query(`INSERT INTO w VALUES (1, 'cli')`);
    const server = embedded.db.sql.query(`INSERT INTO w VALUES (2, 'server')`);
    expect(await settled(server)).toBe('waiting');
    cli.on('error', () => {}); // the connection it drops itself
    cli.connection.stream.destroy();
    await server;
    expect(await rows()).toEqual([2]);
    await embedded.db.sql.exec('DELETE FROM w');
  });
});

describe.skipIf(!testDatabaseUrl)('a PostgreSQL connection lost while the server holds it', () => {
  let pgdb: Awaited<ReturnType<typeof freshPostgres>>;
  let proxy: Proxy;
  let db: Database;
  beforeAll(async () => {
    pgdb = await freshPostgres(testDatabaseUrl!);
    const target = new URL(testDatabaseUrl!);
    proxy = new Proxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.up();
    const viaProxy = new URL(pgdb.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    db = await openDatabase({ url: viaProxy.toString() });
  });
  afterAll(async () => {
    await db?.close();
    await proxy?.down();
    await pgdb?.drop();
  });

  // pg reports a connection that ends between two queries as an 'error' event on its client, which
  // crashed the process when nobody listened (the pool listens only while the client is idle).
  it('fails the transaction or session that held it, and the next one gets a new connection', async () => {
    const crashes: unknown[] = [];
    const onUncaught = (err: unknown) => crashes.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const cut = async () => {
        await proxy.down();
        await new Promise((r) => setTimeout(r, 100));
        await proxy.up();
      };
      await expect(db.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await cut();
        return tx.query('SELECT 2');
      })).rejects.toThrow();
      await expect(db.session(async (s) => {
        await s.query('SELECT 1');
        await cut();
        return s.query('SELECT 2');
      })).rejects.toThrow();
      expect(crashes).toEqual([]);
      expect(await db.sql.query('SELECT 3 AS n')).toEqual([{ n: 3 }]);
      expect(await db.transaction((tx) => tx.query('SELECT 4 AS n'))).toEqual([{ n: 4 }]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
