import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TesseraError } from './errors.ts';

/** What the SDK keeps between runs: the last valid token or license file and the latest time seen. */
export interface LicenseState {
  key?: string;
  fingerprint?: string;
  /** Last activation token the server issued (compact JWS). */
  token?: string;
  /** Installed offline license file (armored or compact JWS). */
  licenseFile?: string;
  revision?: number;
  /** ISO time of the last successful contact with the server. */
  lastOnlineAt?: string;
  /** Latest trustworthy time seen (server time or signed iat): the clock must not go back before it. */
  lastSeenTime?: string;
  /** The server's clock minus this machine's at the last contact (ms): offline checks run on the server's time. */
  clockOffsetMs?: number;
  /**
   * The server's last refusal of this device (revoked, released, suspended, expired, not found): offline
   * validation fails with this code until the server answers otherwise.
   */
  refusal?: { code: string; at: string };
  /** Activations whose license file was deactivated here: their files are never installed again. */
  deactivated?: string[];
  /** The device key made for offline activation (the private half never leaves this machine). */
  deviceKey?: { publicJwk: Record<string, unknown>; privateJwk: Record<string, unknown> };
  /** Offline consumption per meter since the license file was installed, reported in the deactivation file. */
  offlineUsage?: Record<string, number>;
  /** Idempotency keys of usage calls in flight (key -> `operation:meter:quantity`), kept across retries and restarts. */
  pendingUsage?: Record<string, string>;
}

export interface Storage {
  load(): Promise<LicenseState>;
  save(state: LicenseState): Promise<void>;
  /**
   * Read-modify-write as one step: no other `update` or `save` of the same storage runs in between, so
   * concurrent calls of the client never lose each other's changes. Optional for custom storages: the
   * client then serialises its own calls around `load` and `save`.
   */
  update?(change: (state: LicenseState) => LicenseState | Promise<LicenseState>): Promise<LicenseState>;
}

/** Runs tasks one after another, in call order. */
function queue() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task, task);
    tail = run.catch(() => {});
    return run;
  };
}

/** In-memory storage, for tests and short-lived tools. */
export function memoryStorage(initial: LicenseState = {}): Storage {
  let state = structuredClone(initial);
  const serial = queue();
  return {
    load: async () => structuredClone(state),
    save: (next) =>
      serial(async () => {
        state = structuredClone(next);
      }),
    update: (change) =>
      serial(async () => {
        state = structuredClone(await change(structuredClone(state)));
        return structuredClone(state);
      }),
  };
}

// One queue per state file in this process, whatever the number of fileStorage objects opened on it.
const fileQueues = new Map<string, ReturnType<typeof queue>>();

/** A lock whose holder is gone, or older than this, is broken: a holder keeps it for one read and write. */
const LOCK_STALE_MS = 30_000;
/** How long a call waits for another process's lock before it fails with STORAGE_FAILED. */
const LOCK_WAIT_MS = 15_000;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function holderAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `task` holding `<file>.lock`, so the processes sharing a state file (an app and the CLI, two
 * instances of an app) take turns too; the queue above orders one process's own calls. The lock file
 * holds its owner's pid: one left by a process that died (or older than LOCK_STALE_MS) is broken.
 */
async function withFileLock<T>(file: string, task: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const mine = `${process.pid} ${randomBytes(6).toString('hex')}\n`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      try {
        await handle.writeFile(mine);
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        await mkdir(path.dirname(file), { recursive: true }).catch((e: unknown) => {
          throw storageError(file, e);
        });
        continue;
      }
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw storageError(file, err);
    }
    const held = await readFile(lock, 'utf8').catch(() => null);
    const age = await stat(lock).then((st) => Date.now() - st.mtimeMs, () => 0);
    // An empty lock is being filled in by its owner: stale only with age.
    const stale = held !== null && (age > LOCK_STALE_MS || (held !== '' && !holderAlive(Number(held.split(' ')[0]))));
    if (stale) {
      // Moved aside before it is removed: if another process broke it and took the lock meanwhile, the
      // file moved is that one's, and goes back.
      const aside = `${lock}.${process.pid}.${randomBytes(6).toString('hex')}.stale`;
      if (await rename(lock, aside).then(() => true, () => false)) {
        const moved = await readFile(aside, 'utf8').catch(() => held);
        if (moved !== held) await link(aside, lock).catch(() => {});
        await unlink(aside).catch(() => {});
      }
      continue;
    }
    if (Date.now() > deadline) throw storageError(file, new Error(`it is locked by process ${held?.split(' ')[0] || '?'} (${lock})`));
    await pause(wait);
  }
  try {
    return await task();
  } finally {
    // Only our own lock: one broken as stale and taken by another process stays.
    if ((await readFile(lock, 'utf8').catch(() => null)) === mine) await unlink(lock).catch(() => {});
  }
}

function storageError(file: string, err: unknown): TesseraError {
  if (err instanceof TesseraError) return err;
  return new TesseraError('STORAGE_FAILED', `cannot use the license state file ${file}: ${(err as Error).message}`);
}

/**
 * Where the client keeps a tenant's state unless told otherwise: ~/.tessera/<tenant>.json, the tenant's
 * slug with anything but letters, digits and '-' replaced (no path of another directory). The app and
 * `tessera-client` share it.
 */
export function defaultStatePath(tenant: string): string {
  return path.join(os.homedir(), '.tessera', `${tenant.replace(/[^a-z0-9-]/gi, '_')}.json`);
}

/**
 * A JSON file readable only by its owner (0600), replaced atomically so a crash never leaves half a file;
 * saves and updates take turns, within a process and across the processes that share the file.
 * A file that is not a state (truncated, emptied, `null`, edited by hand) is moved aside to
 * `<file>.corrupt-<time>` and read as empty, so the client can activate again instead of being stuck.
 */
export function fileStorage(file: string): Storage {
  const resolved = path.resolve(file);
  let serial = fileQueues.get(resolved);
  if (!serial) {
    serial = queue();
    fileQueues.set(resolved, serial);
  }
  const fileQueue = serial;
  const exclusive = <T>(task: () => Promise<T>) => fileQueue(() => withFileLock(resolved, task));

  const read = async (): Promise<{ state: LicenseState; corrupt?: string }> => {
    let text: string;
    try {
      text = await readFile(resolved, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: {} };
      throw storageError(resolved, err);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return { state: parsed as LicenseState };
    } catch {
      // not JSON: handled below
    }
    return { state: {}, corrupt: text };
  };

  const setAside = async (text: string) => {
    // Only the file that was read: a good state written since by another call stays where it is.
    const now = await readFile(resolved, 'utf8').catch(() => null);
    if (now !== text) return;
    await rename(resolved, `${resolved}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`).catch(() => {});
  };

  const write = async (state: LicenseState) => {
    const tmp = `${resolved}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(path.dirname(resolved), { recursive: true });
      await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, resolved);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw storageError(resolved, err);
    }
  };

  return {
    async load() {
      const { state, corrupt } = await read();
      if (corrupt !== undefined) await exclusive(() => setAside(corrupt));
      return state;
    },
    save: (state) => exclusive(() => write(state)),
    update: (change) =>
      exclusive(async () => {
        const { state, corrupt } = await read();
        if (corrupt !== undefined) await setAside(corrupt);
        const next = await change(state);
        await write(next);
        return next;
      }),
  };
}
