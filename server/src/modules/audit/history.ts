import type { AppDeps } from '../../context.ts';
import { ValidationError } from '../../errors.ts';
import { textProblem } from '../common/validate.ts';

/** At most this many event types in one `auditEvents(types:)`; today's kinds of one family are far fewer. */
export const MAX_EVENT_TYPES = 50;
/** An event type is a short dotted name (the longest written today has 32 characters). */
export const MAX_EVENT_TYPE_LENGTH = 100;

/**
 * The exact event types `auditEvents` is narrowed to, from its `type` or `types` argument (not both: the
 * two would only ever mean the one type they share, a list that says less than it seems to), or null for
 * every type. Bad input is a ValidationError before anything is read. Duplicates count once.
 */
export function eventTypesArg(args: { type?: string | null; types?: readonly string[] | null }): string[] | null {
  const { type, types } = args;
  if (types == null) return type ? [type] : null;
  if (type != null) throw ValidationError.field('types', 'give either `type` or `types`, not both');
  if (types.length === 0) throw ValidationError.field('types', 'must list at least one event type');
  if (types.length > MAX_EVENT_TYPES) throw ValidationError.field('types', `must list at most ${MAX_EVENT_TYPES} event types`);
  const problems = types.flatMap((t, i) => {
    const message =
      t.length === 0 ? 'must not be empty' : t.length > MAX_EVENT_TYPE_LENGTH ? `must be at most ${MAX_EVENT_TYPE_LENGTH} characters` : textProblem(t);
    return message ? [{ path: `types.${i}`, message }] : [];
  });
  if (problems.length) throw new ValidationError(problems);
  return [...new Set(types)];
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
