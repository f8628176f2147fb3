import { GraphQLError } from 'graphql';
import type { Actor } from '../../context.ts';

/** The where-fragment every tenant-owned read starts from. */
export function tenantWhere(actor: Actor): { tenantId: string } {
  if (actor.kind === 'anonymous') {
    throw new GraphQLError('Authentication required', { extensions: { code: 'UNAUTHENTICATED' } });
  }
  return { tenantId: actor.tenantId };
}
