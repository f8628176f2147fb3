import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'prisma/config';

// Rust-free Prisma: the CLI (migrate status/diff/deploy) talks to the database through the same
// driver adapters as the server: PostgreSQL when DATABASE_URL is set, embedded PGlite otherwise.
export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join(import.meta.dirname, 'schema.prisma'),
  migrations: { path: path.join(import.meta.dirname, 'migrations') },
  async adapter() {
    const url = process.env.DATABASE_URL;
    if (url) {
      const { PrismaPg } = await import('@prisma/adapter-pg');
      return new PrismaPg({ connectionString: url });
    }
    const { PGlite } = await import('@electric-sql/pglite');
    const { PrismaPGlite } = await import('pglite-prisma-adapter');
    const dir = process.env.TESSERA_DATA_DIR ?? 'data';
    // `memory://` gives a throw-away database, enough for `migrate diff`.
    const dataDir = dir === 'memory://' ? dir : path.resolve(dir, 'pg');
    if (dir !== 'memory://') mkdirSync(dataDir, { recursive: true });
    return new PrismaPGlite(await PGlite.create(dataDir));
  },
});
