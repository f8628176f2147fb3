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
      socket = new PGLiteSocketServer({ db: socketSession(pglite), path: socketPath });
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

interface PGliteMutexes {
  _runExclusiveQuery<T>(fn: () => Promise<T>): Promise<T>;
  _runExclusiveTransaction<T>(fn: () => Promise<T>): Promise<T>;
}

/** A simple-query protocol message: ROLLBACK. */
const ROLLBACK = (() => {
  const text = Buffer.from('ROLLBACK\0');
  const msg = Buffer.alloc(5 + text.length);
  msg.write('Q', 0);
  msg.writeInt32BE(4 + text.length, 1);
  text.copy(msg, 5);
  return new Uint8Array(msg);
})();

/**
 * PGlite as pglite-socket's clients (the operator CLI) may use it: in turn with the server's own work.
 * PGlite has one session. The server's queries and transactions take its transaction mutex, so none
 * runs inside another's transaction; pglite-socket takes only the per-message one, so a CLI statement
 * ran inside a server transaction that was open at that moment, and a server statement inside a
 * transaction the CLI had open: a server write was rolled back with the CLI's transaction after the
 * server had answered it, and a server COMMIT committed a CLI transaction halfway.
 *
 * Here each socket message takes the transaction mutex too, and a message that leaves the session in a
 * transaction keeps it until a later message of that client ends the transaction (or the client goes,
 * and pglite-socket rolls it back): the server waits meanwhile, as it waits for its own transactions.
 */
export function socketSession(pglite: PGlite): PGlite {
  const mutexes = pglite as unknown as PGliteMutexes;
  /** Lets the transaction mutex go; set while a socket client's transaction holds it. */
  let held: (() => void) | null = null;
  const letGoUnlessInTransaction = () => {
    if (held && !pglite.isInTransaction()) {
      held();
      held = null;
    }
  };

  function runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (held) return mutexes._runExclusiveQuery(fn).finally(letGoUnlessInTransaction);
    return new Promise<T>((resolve, reject) => {
      void mutexes._runExclusiveTransaction(async () => {
        try {
          resolve(await mutexes._runExclusiveQuery(fn));
        } catch (err) {
          reject(err);
        }
        if (pglite.isInTransaction()) await new Promise<void>((letGo) => (held = letGo));
      }).catch(reject);
    });
  }

  const session = {
    get waitReady() {
      return pglite.waitReady;
    },
    runExclusive,
    execProtocolRawStream: pglite.execProtocolRawStream.bind(pglite),
    /** For pglite-socket: whether a client's transaction is open (the server's own never shows here). */
    isInTransaction: () => held !== null,
    /** pglite-socket rolls back the transaction of a client that went. */
    async exec(query: string) {
      if (query.trim().toUpperCase() !== 'ROLLBACK') throw new Error(`unexpected statement from pglite-socket: ${query}`);
      await runExclusive(() => pglite.execProtocolRawStream(ROLLBACK, { onRawData: () => {} }));
      return [];
    },
  };
  return session as unknown as PGlite;
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
