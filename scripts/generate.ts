/**
 * The one script for generated artefacts: Prisma client + Pothos types (not committed: installs
 * generate them), the printed schema (schema/schema.graphql, sorted), the manifests of the SDK's and the
 * console's operations, and codegen output. `--check` regenerates, then fails when a committed artefact is
 * stale or when prisma/migrations no longer produce schema.prisma's database.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const check = process.argv.includes('--check');
const run = (cmd: string, args: string[], cwd = root, env: NodeJS.ProcessEnv = {}) =>
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } }).toString();

run('pnpm', ['exec', 'prisma', 'generate'], path.join(root, 'prisma'));

const { printSchema, lexicographicSortSchema } = await import('graphql');
const { schema } = await import('../server/src/schema.ts');
mkdirSync(path.join(root, 'schema'), { recursive: true });
writeFileSync(path.join(root, 'schema/schema.graphql'), printSchema(lexicographicSortSchema(schema)));

// Persisted operations: the SDK's documents, checked against the schema, keyed by SHA-256. The
// server accepts exactly these from unauthenticated (client) callers in production.
const { OPERATIONS } = await import('../sdk/src/operations.ts');
const { createHash } = await import('node:crypto');
const { parse, validate } = await import('graphql');
const manifest: Record<string, string> = {};
const invalid: string[] = [];
for (const [name, document] of Object.entries(OPERATIONS)) {
  const errors = validate(schema, parse(document));
  if (errors.length) invalid.push(`${name}: ${errors.map((e) => e.message).join('; ')}`);
  else manifest[createHash('sha256').update(document).digest('hex')] = document;
}
const sorted = Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(path.join(root, 'schema/persisted-operations.json'), `${JSON.stringify(sorted, null, 2)}\n`);
if (invalid.length) console.warn(`SDK operations not valid against the schema (left out of the manifest):\n  ${invalid.join('\n  ')}`);

// The console's operations as it sends them (each with the fragments it uses), by operation name:
// in production the server runs these, besides the SDK's, for callers without credentials (the app
// shell and the sign-in page before a session exists, any page once it ended).
const { canonicalDocument } = await import('../server/src/persisted.ts');
const { Kind } = await import('graphql');
type Definition = import('graphql').DefinitionNode;
const operationsDir = path.join(root, 'web/src/lib/graphql/operations');
const consoleDefinitions = readdirSync(operationsDir)
  .filter((f) => f.endsWith('.graphql'))
  .sort()
  .flatMap((f) => parse(readFileSync(path.join(operationsDir, f), 'utf8')).definitions);
const fragments = new Map(consoleDefinitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
const consoleOperations: Record<string, string> = {};
for (const operation of consoleDefinitions) {
  if (operation.kind !== Kind.OPERATION_DEFINITION || !operation.name) continue;
  const used = new Map<string, Definition>();
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as { kind?: string; name?: { value: string } };
    if (n.kind === Kind.FRAGMENT_SPREAD && n.name && !used.has(n.name.value)) {
      const fragment = fragments.get(n.name.value);
      if (fragment) used.set(n.name.value, fragment);
      visit(fragment);
    }
    for (const [k, v] of Object.entries(node)) if (k !== 'loc' && typeof v === 'object') visit(v);
  };
  visit(operation);
  consoleOperations[operation.name.value] = canonicalDocument({ kind: Kind.DOCUMENT, definitions: [operation, ...used.values()] });
}
const consoleSorted = Object.fromEntries(Object.entries(consoleOperations).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(path.join(root, 'schema/console-operations.json'), `${JSON.stringify(consoleSorted, null, 2)}\n`);

run('pnpm', ['exec', 'graphql-codegen', '--config', 'codegen.ts']);
console.log('generated: prisma/generated, schema/schema.graphql, schema/persisted-operations.json, schema/console-operations.json, sdk/src/generated, web/src/lib/graphql/generated');

if (check) {
  if (invalid.length) {
    console.error('Every SDK operation must be valid against the schema.');
    process.exit(1);
  }
  const stale = run('git', ['status', '--porcelain', '--', 'schema', 'sdk/src/generated', 'web/src/lib/graphql/generated']).trim();
  if (stale) {
    console.error(`Generated files are stale; run \`pnpm generate\` and commit:\n${stale}`);
    process.exit(1);
  }
  const { migrationDrift } = await import('./migration-drift.ts');
  const drift = await migrationDrift();
  if (drift.length) {
    console.error(`prisma/migrations do not match schema.prisma; author a migration (\`pnpm migration <name>\`):\n${drift.join('\n')}`);
    process.exit(1);
  }
  console.log('generated files and migrations are up to date');
}
