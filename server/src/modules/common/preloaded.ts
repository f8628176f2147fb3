import { getDatamodel } from '@tessera/db/pothos-types';

const models = getDatamodel().datamodel.models as unknown as Record<string, { fields: readonly { name: string; kind: string; type: string }[] }>;

/**
 * Whether `row` (a full row of `model`, with the relations in `loaded` attached as full rows too)
 * answers everything a Pothos prisma `query` ({ include } or { select }) asks for. Services of the hot
 * client paths already hold the rows they wrote; their responses resolve from them instead of reading
 * again, and fall back to a read for anything more (an admin asking for a device's heartbeats).
 */
export function answers(model: string, query: Record<string, unknown>, loaded: Record<string, string>): boolean {
  const shape = (query.include ?? query.select ?? {}) as Record<string, unknown>;
  const fields = models[model]?.fields ?? [];
  for (const [name, sub] of Object.entries(shape)) {
    if (!sub) continue;
    const field = fields.find((f) => f.name === name);
    if (!field) return false; // _count and the like
    if (field.kind !== 'object') continue;
    const target = loaded[name];
    if (!target) return false;
    if (typeof sub === 'object' && !answers(target, sub as Record<string, unknown>, {})) return false;
  }
  return true;
}
