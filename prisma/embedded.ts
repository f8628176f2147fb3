import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { type Database, openDatabase } from './database.ts';

/**
 * The embedded database under a data dir. PGlite is single-process: the first process to take the
 * lock owns the files, and serves them on a Unix socket inside the data dir so the operator CLI
 * can reach the same database through PostgreSQL's own protocol while the server runs.
 */
export interface EmbeddedDatabase {
  db: Database;
  release(): Promise<void>;
}

const LOCK = 'tessera.pid';
export const SOCKET = '.s.PGSQL.5432';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid holding the data dir, or null when nobody does (a stale lock is ignored). */
export function lockHolder(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(dataDir, LOCK), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

function takeLock(dataDir: string) {
  const file = path.join(dataDir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = lockHolder(dataDir);
      if (holder) throw new Error(`the data dir ${dataDir} is in use by process ${holder}`);
      rmSync(file, { force: true });
    }
  }
  throw new Error(`could not lock the data dir ${dataDir}`);
}

export async function openEmbedded(dataDir: string, options: { serveSocket: boolean }): Promise<EmbeddedDatabase> {
  mkdirSync(dataDir, { recursive: true });
  takeLock(dataDir);
  try {
    const pglite = await PGlite.create(path.join(dataDir, 'pg'));
    const db = await openDatabase({ pglite });
    let socket: PGLiteSocketServer | undefined;
    if (options.serveSocket) {
      const socketPath = path.join(dataDir, SOCKET);
      if (existsSync(socketPath)) rmSync(socketPath);
      socket = new PGLiteSocketServer({ db: pglite, path: socketPath });
      await socket.start();
    }
    return {
      db,
      async release() {
        await socket?.stop();
        await db.close();
        await pglite.close();
        rmSync(path.join(dataDir, LOCK), { force: true });
      },
    };
  } catch (err) {
    rmSync(path.join(dataDir, LOCK), { force: true });
    throw err;
  }
}

/** For the operator CLI: the running server's database through its socket, or the files themselves. */
export async function openForOperator(dataDir: string): Promise<{ db: Database; release(): Promise<void>; viaServer: boolean }> {
  if (lockHolder(dataDir) && existsSync(path.join(dataDir, SOCKET))) {
    const db = await openDatabase({ socketDir: dataDir });
    return { db, viaServer: true, release: () => db.close() };
  }
  const embedded = await openEmbedded(dataDir, { serveSocket: false });
  return { ...embedded, viaServer: false };
}
