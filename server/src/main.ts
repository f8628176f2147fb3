import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { openEmbedded, type EmbeddedDatabase } from '@tessera/db/embedded';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { seedDemo } from './demo.ts';
import { createLogger } from './modules/security/log.ts';

const logger = createLogger(process.env.LOG_LEVEL || 'info');

async function main() {
  const started = performance.now();
  const config = loadConfig();
  const embedded: EmbeddedDatabase | undefined = config.databaseUrl
    ? undefined
    : await openEmbedded(config.dataDir, { serveSocket: true });
  const app = await buildApp({ config, db: embedded?.db });

  let demo: Awaited<ReturnType<typeof seedDemo>> | undefined;
  if (config.seedDemo && (await app.deps.prisma.tenant.count()) === 0) {
    demo = await seedDemo(app.deps);
    if (!config.databaseUrl) {
      const file = path.join(config.dataDir, 'demo-credentials.json');
      writeFileSync(file, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 });
    }
  }

  await new Promise<void>((resolve, reject) => {
    app.server.once('error', reject);
    app.server.listen(config.port, config.host, resolve);
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const base = `http://${host}:${port}`;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`Tessera is serving at ${base} (${config.databaseUrl ? 'PostgreSQL' : `embedded PGlite in ${config.dataDir}`}, ready in ${seconds}s)`);
  console.log(`  Admin console: ${base}/   GraphQL API: ${base}/graphql   health: ${base}/health`);
  if (demo) {
    console.log(`  Created the "${demo.tenant}" tenant with sample products and licenses.`);
    console.log(`  Sign in at ${base}/ with workspace "${demo.tenant}", email ${demo.email}, password ${demo.password}`);
    if (!config.databaseUrl) console.log(`  (also saved in ${path.join(config.dataDir, 'demo-credentials.json')})`);
    console.log(`  API token (OWNER, shown once): ${demo.apiToken}`);
  }

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
      await app.stop();
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
}

main().catch((err) => {
  logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'Tessera failed to start');
  // Also on stderr in plain words, for whoever started it by hand.
  console.error('Tessera failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
