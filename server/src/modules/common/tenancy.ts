import { GraphQLError } from 'graphql';
import type { Actor } from '../../context.ts';
import { badNodeId, UUID } from './ids.ts';

/** The where-fragment every tenant-owned read starts from. */
export function tenantWhere(actor: Actor): { tenantId: string } {
  if (actor.kind === 'anonymous') {
    throw new GraphQLError('Authentication required', { extensions: { code: 'UNAUTHENTICATED' } });
  }
  return { tenantId: actor.tenantId };
}

/** A prismaNode's lookup: the caller's tenant only, and a malformed id is bad input rather than a SQL error. */
export function nodeWhere(id: string, actor: Actor): { id: string; tenantId: string } {
  if (!UUID.test(id)) throw badNodeId();
  return { id, ...tenantWhere(actor) };
}
