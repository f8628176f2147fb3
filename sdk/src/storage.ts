import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

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
  /** The device key made for offline activation (the private half never leaves this machine). */
  deviceKey?: { publicJwk: Record<string, unknown>; privateJwk: Record<string, unknown> };
  /** Offline consumption per meter since the license file was installed, reported in the deactivation file. */
  offlineUsage?: Record<string, number>;
  /** Idempotency keys of usage calls in flight, kept across retries and restarts. */
  pendingUsage?: Record<string, string>;
}

export interface Storage {
  load(): Promise<LicenseState>;
  save(state: LicenseState): Promise<void>;
}

/** In-memory storage, for tests and short-lived tools. */
export function memoryStorage(initial: LicenseState = {}): Storage {
  let state = structuredClone(initial);
  return {
    load: async () => structuredClone(state),
    save: async (next) => {
      state = structuredClone(next);
    },
  };
}

/** A JSON file readable only by its owner (0600), replaced atomically so a crash never leaves half a file. */
export function fileStorage(file: string): Storage {
  return {
    async load() {
      try {
        return JSON.parse(await readFile(file, 'utf8')) as LicenseState;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
        throw err;
      }
    },
    async save(state) {
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, file);
    },
  };
}
