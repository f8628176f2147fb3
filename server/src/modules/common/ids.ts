import { decodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError, type GraphQLSchema, isObjectType } from 'graphql';
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

/** node(id:) and nodes(ids:) given an id that cannot name a node: bad input, as every id argument answers. */
export function badNodeId(): GraphQLError {
  return new GraphQLError('not a valid id', { extensions: { code: 'BAD_USER_INPUT' } });
}

/** Relay's decoding of node and nodes ids, with its refusal of a malformed one (not base64 `Type:id`) as bad input. */
export function decodeNodeId(globalID: string): { typename: string; id: string } {
  try {
    return decodeGlobalID(globalID);
  } catch {
    throw badNodeId();
  }
}

/** A decoded id's type must be one of the schema's Node types: another name is bad input, not a server error. */
export function assertNodeType(typename: string, schema: GraphQLSchema): void {
  const type = schema.getType(typename);
  if (!isObjectType(type) || !type.getInterfaces().some((i) => i.name === 'Node')) throw badNodeId();
}
