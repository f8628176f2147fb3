import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { openEmbedded, type EmbeddedDatabase } from '@tessera/db/embedded';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { seedDemo } from './demo.ts';
import { isUnavailable } from './modules/security/availability.ts';
import { createLogger } from './modules/security/log.ts';

/** At `info` until the configuration (LOG_LEVEL among it) is read and valid. */
let logger = createLogger('info');
/** What a failed start must let go of: the data dir's lock and socket, connections, timers. */
let embedded: EmbeddedDatabase | undefined;
let app: Awaited<ReturnType<typeof buildApp>> | undefined;

async function main() {
  const started = performance.now();
  const config = loadConfig();
  logger = createLogger(config.security.logLevel);
  console.log(`Starting Tessera (${config.databaseUrl ? 'PostgreSQL' : `embedded PGlite in ${config.dataDir}`}): opening the database and applying migrations...`);
  embedded = config.databaseUrl ? undefined : await openEmbedded(config.dataDir, { serveSocket: true });
  app = await buildApp({ config, db: embedded?.db }).catch((err: unknown) => {
    // pg's own words ("timeout exceeded when trying to connect") do not say which database.
    if (!config.databaseUrl || !isUnavailable(err)) throw err;
    const url = new URL(config.databaseUrl);
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot reach PostgreSQL at ${url.hostname}:${url.port || 5432} (${reason}); TESSERA_DB_CONNECT_TIMEOUT_MS is ${config.dbConnectTimeoutMs}`);
  });

  // Listening first: a port already taken fails the start before the demo tenant (and its token,
  // shown once) is created.
  const server = app.server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  let demo: Awaited<ReturnType<typeof seedDemo>> | undefined;
  if (config.seedDemo && (await app.deps.prisma.tenant.count()) === 0) {
    demo = await seedDemo(app.deps);
    if (!config.databaseUrl) {
      const file = path.join(config.dataDir, 'demo-credentials.json');
      writeFileSync(file, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 });
    }
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const base = `http://${host}:${port}`;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  // Before the ready line: whoever reads it may stop the server at once, and a SIGTERM that came before
  // these handlers would kill the process undrained (exit by signal, not 0).
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining and shutting down');
    const timer = setTimeout(() => {
      logger.error({ signal }, 'shutdown timed out');
      process.exit(1);
    }, 15_000).unref();
    try {
      await app!.stop();
      await embedded?.release();
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
    clearTimeout(timer);
    logger.info({ signal }, 'stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // One write, so whoever reads the output (a test, a log shipper) gets the sign-in lines with the URL.
  const lines = [
    `Tessera is serving at ${base} (${config.databaseUrl ? 'PostgreSQL' : `embedded PGlite in ${config.dataDir}`}, ready in ${seconds}s)`,
    `  Admin console: ${base}/   GraphQL API: ${base}/graphql   health: ${base}/health`,
  ];
  if (demo) {
    lines.push(`  Created the "${demo.tenant}" tenant with sample products and licenses.`);
    lines.push(`  Sign in at ${base}/ with workspace "${demo.tenant}", email ${demo.email}, password ${demo.password}`);
    if (!config.databaseUrl) lines.push(`  (also saved in ${path.join(config.dataDir, 'demo-credentials.json')})`);
    lines.push(`  API token (OWNER, shown once): ${demo.apiToken}`);
  }
  console.log(lines.join('\n'));
}

main().catch(async (err) => {
  logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'Tessera failed to start');
  // Also on stderr in plain words, for whoever started it by hand.
  console.error('Tessera failed to start:', err instanceof Error ? err.message : err);
  // Let go of what was opened (the data dir's lock and socket above all), for up to 5 s.
  setTimeout(() => process.exit(1), 5_000).unref();
  await app?.stop().catch(() => {});
  await embedded?.release().catch(() => {});
  process.exit(1);
});
