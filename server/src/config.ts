import path from 'node:path';
import { envInt } from './modules/common/env.ts';
import { loadSecurityConfig, type SecurityConfig } from './modules/security/config.ts';
import { loadWebhookConfig, type WebhookConfig } from './modules/webhooks/config.ts';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  /** PostgreSQL connections per instance. */
  dbPoolSize: number;
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
}


export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  const port = Number(env.PORT ?? 4000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${env.PORT}`);
  const dbPoolSize = Number(env.TESSERA_DB_POOL_SIZE ?? 10);
  if (!Number.isInteger(dbPoolSize) || dbPoolSize < 2 || dbPoolSize > 500) {
    throw new Error(`TESSERA_DB_POOL_SIZE must be a whole number from 2 to 500, got ${env.TESSERA_DB_POOL_SIZE}`);
  }
  return {
    port,
    host: env.HOST ?? '0.0.0.0',
    dataDir: path.resolve(env.TESSERA_DATA_DIR ?? 'data'),
    databaseUrl,
    dbPoolSize,
    redisUrl: env.REDIS_URL || undefined,
    masterKey: env.TESSERA_MASTER_KEY || undefined,
    production: env.NODE_ENV === 'production',
    // Demo data belongs on the embedded database; a PostgreSQL deployment opts in explicitly.
    seedDemo: env.TESSERA_DEMO ? env.TESSERA_DEMO === '1' || env.TESSERA_DEMO === 'true' : !databaseUrl,
    security: loadSecurityConfig(env),
    webhooks: loadWebhookConfig(env),
    complianceSweepMs: envInt(env, 'TESSERA_COMPLIANCE_SWEEP_SECONDS', 30) * 1000,
    dbMaintenanceMs: envInt(env, 'TESSERA_DB_MAINTENANCE_SECONDS', 5) * 1000,
    heartbeatRetentionDays: envInt(env, 'TESSERA_HEARTBEAT_RETENTION_DAYS', 90),
  };
}
