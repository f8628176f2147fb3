import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

// The environment as README.md's configuration table documents it: defaults when unset (or set empty,
// as `VAR=` in a unit file or compose file does), and a start that fails naming the variable otherwise.
const base = { NODE_ENV: 'test' };

describe('loadConfig', () => {
  it('takes the documented defaults for unset and empty variables', () => {
    for (const env of [base, { ...base, PORT: '', HOST: '', TESSERA_DATA_DIR: '', TESSERA_DB_POOL_SIZE: '', TESSERA_DB_CONNECT_TIMEOUT_MS: '', TESSERA_DB_QUERY_TIMEOUT_MS: '', TESSERA_DEMO: '', LOG_LEVEL: '' }]) {
      const c = loadConfig(env);
      expect(c.port).toBe(4000);
      expect(c.host).toBe('0.0.0.0');
      expect(c.dataDir).toBe(`${process.cwd()}/data`);
      expect(c.dbPoolSize).toBe(10);
      expect(c.dbConnectTimeoutMs).toBe(5000);
      expect(c.dbQueryTimeoutMs).toBe(30_000);
      expect(c.seedDemo).toBe(true);
      expect(c.security.logLevel).toBe('silent');
      expect(c.webhooks.retentionDays).toBe(30);
      expect(c.webhooks.disableAfterFailures).toBe(10);
      expect(c.socketRecheckMs).toBe(60_000);
    }
    expect(loadConfig({ ...base, DATABASE_URL: 'postgres://db.internal/tessera' }).seedDemo).toBe(false);
    expect(loadConfig({ ...base, NODE_ENV: 'production' }).security.logLevel).toBe('info');
  });

  it('reads the values it documents', () => {
    const c = loadConfig({
      ...base,
      PORT: '0',
      TESSERA_DEMO: 'false',
      LOG_LEVEL: 'warn',
      DATABASE_URL: 'postgresql://u:p@db:5432/t',
      REDIS_URL: 'rediss://cache:6380',
      TESSERA_CORS_ORIGINS: ' https://Console.Example.com , http://localhost:5173',
      TESSERA_COMPLIANCE_SWEEP_SECONDS: '0',
    });
    expect(c).toMatchObject({ port: 0, seedDemo: false, databaseUrl: 'postgresql://u:p@db:5432/t', redisUrl: 'rediss://cache:6380', complianceSweepMs: 0 });
    expect(c.security).toMatchObject({ logLevel: 'warn', corsOrigins: ['https://console.example.com', 'http://localhost:5173'] });
    expect(loadConfig({ ...base, DATABASE_URL: 'postgres://db/t', TESSERA_DEMO: '1' }).seedDemo).toBe(true);
    expect(loadConfig({ ...base, TESSERA_WEBHOOK_RETENTION_DAYS: '0' }).webhooks.retentionDays).toBe(0);
    expect(loadConfig({ ...base, TESSERA_DB_QUERY_TIMEOUT_MS: '0' }).dbQueryTimeoutMs).toBe(0);
    expect(loadConfig({ ...base, TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES: '0' }).webhooks.disableAfterFailures).toBe(0);
    expect(loadConfig({ ...base, TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES: '3' }).webhooks.disableAfterFailures).toBe(3);
    expect(loadConfig({ ...base, TESSERA_SOCKET_RECHECK_SECONDS: '600' }).socketRecheckMs).toBe(600_000);
  });

  it.each([
    ['PORT', '80a'],
    ['PORT', '70000'],
    ['PORT', '1e3'],
    ['TESSERA_DB_POOL_SIZE', '1'],
    ['TESSERA_DB_CONNECT_TIMEOUT_MS', '0'],
    ['TESSERA_DEMO', 'yes'],
    ['LOG_LEVEL', 'verbose'],
    ['DATABASE_URL', 'mysql://db/tessera'],
    ['DATABASE_URL', 'db.internal:5432'],
    ['REDIS_URL', 'cache.internal:6379'],
    ['TESSERA_MASTER_KEY', 'not-a-key'],
    ['TESSERA_CORS_ORIGINS', 'https://console.example.com/'],
    ['TESSERA_CORS_ORIGINS', 'console.example.com'],
    // Past Node's longest timer, an interval would fire every millisecond.
    ['TESSERA_COMPLIANCE_SWEEP_SECONDS', '3000000'],
    ['TESSERA_DB_MAINTENANCE_SECONDS', '3000000'],
    ['TESSERA_WEBHOOK_TIMEOUT_MS', '3000000000'],
    ['TESSERA_HEARTBEAT_RETENTION_DAYS', '100000000'],
    ['TESSERA_SOCKET_RECHECK_SECONDS', '0'],
    ['TESSERA_SOCKET_RECHECK_SECONDS', '3000000'],
    ['TESSERA_WEBHOOK_RETENTION_DAYS', '-1'],
    ['TESSERA_WEBHOOK_RETENTION_DAYS', '7d'],
    ['TESSERA_WEBHOOK_RETENTION_DAYS', '100000000'],
    ['TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES', '-1'],
    ['TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES', 'ten'],
    ['TESSERA_RATE_LIMIT_SIGNIN_ACCOUNT', '-1'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(name);
  });

  it('requires TESSERA_MASTER_KEY with DATABASE_URL in production, where every instance must share it', () => {
    const pg = { DATABASE_URL: 'postgres://db.internal/tessera' };
    expect(() => loadConfig({ ...pg, NODE_ENV: 'production' })).toThrow('TESSERA_MASTER_KEY must be set when DATABASE_URL is (NODE_ENV=production)');
    expect(() => loadConfig({ ...pg, NODE_ENV: 'production', TESSERA_MASTER_KEY: '' })).toThrow('TESSERA_MASTER_KEY must be set');
    expect(loadConfig({ ...pg, NODE_ENV: 'production', TESSERA_MASTER_KEY: 'a'.repeat(64) }).masterKey).toBe('a'.repeat(64));
    // The embedded database keeps its generated key in its data dir; outside production a warning is enough.
    expect(loadConfig({ NODE_ENV: 'production' }).masterKey).toBeUndefined();
    expect(loadConfig({ ...base, ...pg }).masterKey).toBeUndefined();
  });
});
