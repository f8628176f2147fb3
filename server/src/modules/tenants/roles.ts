import type { Role } from '@tessera/db/client';
import type { Actor } from '../../context.ts';

const RANK: Record<Role, number> = { READ_ONLY: 0, SUPPORT: 1, ADMIN: 2, OWNER: 3 };

export function hasRole(actor: Actor, required: Role): boolean {
  if (actor.kind === 'anonymous') return false;
  if (actor.kind === 'operator') return true;
  return RANK[actor.role] >= RANK[required];
}

/** The caller's tenant; every tenant-owned read and write is filtered by it. */
export function tenantOf(actor: Actor): string | null {
  return actor.kind === 'anonymous' ? null : actor.tenantId;
}
