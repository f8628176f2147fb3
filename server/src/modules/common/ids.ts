import { decodeGlobalID } from '@pothos/plugin-relay';
import { ValidationError } from '../../errors.ts';

/** A uuid in its text form, any case. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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

