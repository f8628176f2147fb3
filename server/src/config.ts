import path from 'node:path';
import { envInt, MAX_TIMER_MS } from './modules/common/env.ts';
import { loadSecurityConfig, type SecurityConfig } from './modules/security/config.ts';
import { parseMasterKey } from './modules/signing/service.ts';
import { loadWebhookConfig, type WebhookConfig } from './modules/webhooks/config.ts';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  /** PostgreSQL connections per instance. */
  dbPoolSize: number;
  /** How long a query may wait to open a PostgreSQL connection or get a free one, before failing as unavailable. */
  dbConnectTimeoutMs: number;
  /** How long a statement may go unanswered before its connection is taken for dead (0: never). */
  dbQueryTimeoutMs: number;
  redisUrl?: string;
  masterKey?: string;
  production: boolean;
  /** Create the `demo` tenant when the database has no tenant yet. */
  seedDemo: boolean;
  /** Rate limits, GraphQL limits, proxies, CORS, logging (modules/security). */
  security: SecurityConfig;
  /** Webhook retries and timeouts (modules/webhooks). */
  webhooks: WebhookConfig;
  /** How often the compliance sweep (expiring-soon, expired, heartbeat timeouts) runs; 0 turns it off. */
  complianceSweepMs: number;
  /** How often the server checks for tables to vacuum and analyze where no autovacuum does it; 0 turns it off. */
  dbMaintenanceMs: number;
  /** Heartbeat samples (the last-seen / version / OS time series) older than this are deleted; 0 keeps them forever. */
  heartbeatRetentionDays: number;
  /** How often open graphql-ws sockets' credentials are re-checked (expiries; revocations the bus did not bring). */
  socketRecheckMs: number;
}


/** A setting that is on or off: `fallback` when unset or empty, an error for anything but 1/0/true/false. */
function envFlag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (raw === '1' || raw === 'true') return true;
  if (raw === '0' || raw === 'false') return false;
  throw new Error(`${name} must be 1 or 0 (true or false), got "${env[name]}"`);
}

/** A PostgreSQL connection URL, checked before anything tries to connect with it. */
function postgresUrl(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:5432/database)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:5432/database), got a ${url.protocol}// URL`);
  }
  return raw;
}

function redisUrl(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let protocol: string;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    throw new Error('REDIS_URL must be a Redis URL (redis://host:6379 or rediss://...)');
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') throw new Error(`REDIS_URL must be a Redis URL (redis://host:6379 or rediss://...), got a ${protocol}// URL`);
  return raw;
}

/** Every setting from the environment (README.md, "Configuration"); a bad value throws, naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = postgresUrl(env.DATABASE_URL);
  const masterKey = env.TESSERA_MASTER_KEY || undefined;
  const production = env.NODE_ENV === 'production';
  // Checked here, so a bad key fails the start before the database is even opened.
  if (masterKey) parseMasterKey(masterKey);
  else if (databaseUrl && production) {
    // Each instance would make a key of its own in its data dir, and the signing keys one encrypts the
    // others cannot open.
    throw new Error(
      'TESSERA_MASTER_KEY must be set when DATABASE_URL is (NODE_ENV=production): the same 32-byte key on every instance sharing the database (e.g. `openssl rand -base64 32`)',
    );
  }
  return {
    port: envInt(env, 'PORT', 4000, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    dataDir: path.resolve(env.TESSERA_DATA_DIR || 'data'),
    databaseUrl,
    dbPoolSize: envInt(env, 'TESSERA_DB_POOL_SIZE', 10, 2, 500),
    dbConnectTimeoutMs: envInt(env, 'TESSERA_DB_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
    dbQueryTimeoutMs: envInt(env, 'TESSERA_DB_QUERY_TIMEOUT_MS', 30_000, 0, 3_600_000),
    redisUrl: redisUrl(env.REDIS_URL),
    masterKey,
    production,
    // Demo data belongs on the embedded database; a PostgreSQL deployment opts in explicitly.
    seedDemo: envFlag(env, 'TESSERA_DEMO', !databaseUrl),
    security: loadSecurityConfig(env),
    webhooks: loadWebhookConfig(env),
    complianceSweepMs: envInt(env, 'TESSERA_COMPLIANCE_SWEEP_SECONDS', 30, 0, Math.floor(MAX_TIMER_MS / 1000)) * 1000,
    dbMaintenanceMs: envInt(env, 'TESSERA_DB_MAINTENANCE_SECONDS', 5, 0, Math.floor(MAX_TIMER_MS / 1000)) * 1000,
    heartbeatRetentionDays: envInt(env, 'TESSERA_HEARTBEAT_RETENTION_DAYS', 90, 0, 36_500),
    socketRecheckMs: envInt(env, 'TESSERA_SOCKET_RECHECK_SECONDS', 60, 1, Math.floor(MAX_TIMER_MS / 1000)) * 1000,
  };
}
