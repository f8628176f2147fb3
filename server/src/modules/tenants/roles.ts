import type { Role } from '@tessera/db/client';
import type { Actor } from '../../context.ts';

const RANK: Record<Role, number> = { READ_ONLY: 0, SUPPORT: 1, ADMIN: 2, OWNER: 3 };

/** Whether `role` gives at least what `required` gives. */
export const atLeast = (role: Role, required: Role): boolean => RANK[role] >= RANK[required];

/** The roles that give more than `role`. */
export const rolesAbove = (role: Role): Role[] => (Object.keys(RANK) as Role[]).filter((r) => RANK[r] > RANK[role]);

export function hasRole(actor: Actor, required: Role): boolean {
  if (actor.kind === 'anonymous') return false;
  if (actor.kind === 'operator') return true;
  return atLeast(actor.role, required);
}

/** The caller's tenant; every tenant-owned read and write is filtered by it. */
export function tenantOf(actor: Actor): string | null {
  return actor.kind === 'anonymous' ? null : actor.tenantId;
}
