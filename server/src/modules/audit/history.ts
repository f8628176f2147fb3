import type { AppDeps } from '../../context.ts';
import { ValidationError } from '../../errors.ts';
import { parseId } from '../common/ids.ts';
import { textProblem } from '../common/validate.ts';

/** At most this many event types in one `auditEvents(types:)`; today's kinds of one family are far fewer. */
export const MAX_EVENT_TYPES = 50;
/** An event type is a short dotted name (the longest written today has 32 characters). */
export const MAX_EVENT_TYPE_LENGTH = 100;

/**
 * `<domain>.*`: every event type of one domain, e.g. `license.*` for license.created, license.renewed...
 * A domain is one lowercase segment, as in every type written (event-types.ts); nothing else may hold `*`.
 */
const DOMAIN_PATTERN = /^[a-z0-9_]+\.\*$/;
const NOT_A_PATTERN = 'not a valid pattern: a pattern names one whole domain, as "<domain>.*" (e.g. "license.*")';

/** What `auditEvents` and the audit export are narrowed to: any of these exact types or of these domains. */
export interface EventTypeFilter {
  types: string[];
  /** Each domain with its dot, e.g. "license." for `license.*`. */
  domains: string[];
}

/** The audit log's filters, as `auditEvents` and the export (export.ts) take them: the same names, the same meaning. */
export interface AuditFilter {
  types: EventTypeFilter | null;
  licenseId: string | null;
}

function typeProblem(t: string): string | null {
  if (t.length === 0) return 'must not be empty';
  if (t.length > MAX_EVENT_TYPE_LENGTH) return `must be at most ${MAX_EVENT_TYPE_LENGTH} characters`;
  if (t.includes('*') && !DOMAIN_PATTERN.test(t)) return NOT_A_PATTERN;
  return textProblem(t);
}

/**
 * The event types the audit log is narrowed to, from a `type` or `types` argument (not both: the two
 * would only ever mean the one type they share, a list that says less than it seems to), or null for
 * every type. Each is an exact type or a `<domain>.*` pattern. Bad input is a ValidationError before
 * anything is read. Duplicates count once.
 */
export function eventTypesArg(args: { type?: string | null; types?: readonly string[] | null }): EventTypeFilter | null {
  const { type, types } = args;
  if (type != null && types != null) throw ValidationError.field('types', 'give either `type` or `types`, not both');
  if (type != null) {
    const problem = typeProblem(type);
    if (problem) throw ValidationError.field('type', problem);
    return filterOf([type]);
  }
  if (types == null) return null;
  if (types.length === 0) throw ValidationError.field('types', 'must list at least one event type');
  if (types.length > MAX_EVENT_TYPES) throw ValidationError.field('types', `must list at most ${MAX_EVENT_TYPES} event types`);
  const problems = types.flatMap((t, i) => {
    const message = typeProblem(t);
    return message ? [{ path: `types.${i}`, message }] : [];
  });
  if (problems.length) throw new ValidationError(problems);
  return filterOf(types);
}

function filterOf(list: readonly string[]): EventTypeFilter {
  const unique = [...new Set(list)];
  return { types: unique.filter((t) => !t.endsWith('*')), domains: unique.filter((t) => t.endsWith('*')).map((t) => t.slice(0, -1)) };
}

/** The audit log's filter arguments, checked (ValidationError on their fields); a license is its global id or raw uuid. */
export function auditFilterArgs(args: { type?: string | null; types?: readonly string[] | null; licenseId?: string | number | null }): AuditFilter {
  const types = eventTypesArg(args);
  const licenseId = args.licenseId == null ? null : parseId(String(args.licenseId), 'License', 'licenseId');
  return { types, licenseId };
}

/**
 * The exact types a filter stands for in a tenant's log: its exact types, and every type of its domains
 * that the log holds (one read, only when there are domains). Empty: nothing can match.
 */
export async function exactEventTypes(deps: AppDeps, tenantId: string, filter: EventTypeFilter): Promise<string[]> {
  if (filter.domains.length === 0) return filter.types;
  const rows = await deps.db.sql.query<{ type: string }>(typesOfDomainsSql(filter.domains.length), [tenantId, ...filter.domains]);
  return [...new Set([...filter.types, ...rows.map((r) => r.type)])];
}

/**
 * The statement of exactEventTypes: $1 the tenant id, then the domains (with their dots). It skips through
 * the (tenantId, type, id) index from one distinct type to the next (one short descent each; a tenant's
 * log holds a few dozen types, however many rows) and keeps those of the domains. Not a range
 * `type >= 'license.' AND type < 'license/'`: that holds only under a collation that orders by bytes (C,
 * as the databases here), not under every one a database may have (ICU's `en-u-ka-shifted`, which ignores
 * punctuation, puts no license.* type in it: the filter would silently find nothing).
 */
export function typesOfDomainsSql(domains: number): string {
  const of = Array.from({ length: domains }, (_, i) => `starts_with(type, $${i + 2})`).join(' OR ');
  return `WITH RECURSIVE kinds(type) AS (
  (SELECT type FROM "AuditEvent" WHERE "tenantId" = $1::uuid ORDER BY type LIMIT 1)
  UNION ALL
  SELECT next.type FROM kinds, LATERAL (SELECT e.type FROM "AuditEvent" e WHERE e."tenantId" = $1::uuid AND e.type > kinds.type ORDER BY e.type LIMIT 1) next
)
SELECT type FROM kinds WHERE ${of}`;
}

/**
 * One page of a tenant's events of several types, newest first, as ids: `take` rows after the `cursor` id
 * (older ones), or with a negative `take` the |take| rows before it (newer ones; without a cursor the
 * oldest), as Prisma's `take` and `cursor` would page `orderBy: { id: 'desc' }`.
 *
 * `type IN (...) ORDER BY id DESC LIMIT n` cannot be served in order by one index: PostgreSQL then either
 * walks the tenant's whole log newest first, skipping the rows of other types (a log of heartbeats with
 * the asked-for types long ago: all of it), or reads every row of those types and sorts them (a burst of
 * refused activations: millions). Here each type is a query of its own, newest first, as a single `type`
 * is, and their pages are merged: at most types x |take| rows, however long the log.
 */
export async function pageOfTypes(deps: AppDeps, tenantId: string, types: readonly string[], take: number, cursor: bigint | number | string | null): Promise<bigint[]> {
  const backward = take < 0;
  const rows = await deps.db.sql.query<{ id: string }>(pageOfTypesSql(types.length, backward, cursor != null), [tenantId, Math.abs(take), ...types, ...(cursor == null ? [] : [String(cursor)])]);
  const ids = rows.map((r) => BigInt(r.id));
  return backward ? ids.reverse() : ids;
}

/**
 * The statement of pageOfTypes: $1 the tenant id, $2 how many, then the types, then the cursor id (when
 * `afterCursor`). Each type is a parameter of its own branch, not an element of an array joined laterally:
 * planned with its value, the branch of a rare type goes through the (tenantId, type, id) index, where a
 * type the planner cannot see is assumed as common as the average one, and the primary key walked newest
 * first instead (seen with 20,000 newer heartbeats, on PGlite and PostgreSQL alike).
 */
export function pageOfTypesSql(types: number, backward: boolean, afterCursor: boolean): string {
  const order = backward ? 'ASC' : 'DESC';
  const after = afterCursor ? ` AND id ${backward ? '>' : '<'} $${types + 3}::bigint` : '';
  const branches = Array.from(
    { length: types },
    (_, i) => `(SELECT id FROM "AuditEvent" WHERE "tenantId" = $1::uuid AND type = $${i + 3}${after} ORDER BY id ${order} LIMIT $2)`,
  );
  // By e.id, the bigint: a bare `id` would be the output column, the text, and put 99 above 100.
  return `SELECT id::text AS id FROM (${branches.join(' UNION ALL ')}) e ORDER BY e.id ${order} LIMIT $2`;
}
