import { decodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import { ValidationError } from '../../errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Accepts a Relay global id of the expected type (or a raw uuid) and returns the database id.
 * Anything else is a ValidationError on `path`, before any database access.
 */
export function parseId(value: string, typename: string, path: string): string {
  let id = value;
  if (!UUID.test(value)) {
    try {
      const decoded = decodeGlobalID(value);
      if (decoded.typename !== typename) throw new Error('wrong type');
      id = decoded.id;
    } catch {
      throw ValidationError.field(path, `not a ${typename} id`);
    }
  }
  if (!UUID.test(id)) throw ValidationError.field(path, `not a ${typename} id`);
  return id.toLowerCase();
}

/**
 * Checks `after` / `before` of a connection ordered by a uuid `id` before they reach the database: a
 * forged cursor holding something else would otherwise fail in SQL as an internal error.
 */
export function assertUuidCursors(args: { after?: string | null; before?: string | null }): void {
  for (const name of ['after', 'before'] as const) {
    const cursor = args[name];
    if (cursor === null || cursor === undefined) continue;
    const decoded = Buffer.from(cursor, 'base64').toString('utf8');
    const m = /^GPC:(?:S:)?(.*)$/.exec(decoded);
    if (!m || !UUID.test(m[1]!)) {
      throw new GraphQLError(`${name} is not a cursor of this list`, { extensions: { code: 'BAD_USER_INPUT' } });
    }
  }
}
