/**
 * Authors prisma/migrations/<timestamp>_<name>/migration.sql from the difference between the last
 * committed schema.prisma (or `--from <file>`) and the working one. `prisma migrate dev` needs a
 * native engine these machines cannot download; `pnpm check:generated` verifies the result.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [name, flag, fromFile] = process.argv.slice(2);
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: pnpm migration <name_in_snake_case> [--from <old schema.prisma>]');
  process.exit(2);
}
const root = path.resolve(import.meta.dirname, '..');
const prismaDir = path.join(root, 'prisma');
let from = fromFile && flag === '--from' ? path.resolve(fromFile) : '';
if (!from) {
  from = `/tmp/tessera-schema-${process.pid}.prisma`;
  writeFileSync(from, execFileSync('git', ['show', 'HEAD:prisma/schema.prisma'], { cwd: root }));
}
const sql = execFileSync(
  'pnpm',
  ['exec', 'prisma', 'migrate', 'diff', '--from-schema-datamodel', from, '--to-schema-datamodel', 'schema.prisma', '--script'],
  { cwd: prismaDir, env: { ...process.env, TESSERA_DATA_DIR: 'memory://' }, stdio: ['ignore', 'pipe', 'inherit'] },
).toString();
if (!sql.trim() || /^-- This is an empty migration/.test(sql.trim())) {
  console.error('schema.prisma has no changes against the old schema');
  process.exit(1);
}
const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
const out = path.join(prismaDir, 'migrations', `${stamp}_${name}`);
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, 'migration.sql'), sql);
console.log(`wrote ${path.relative(root, out)}/migration.sql`);
