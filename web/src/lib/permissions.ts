import type { Role } from './graphql/generated/graphql';

const RANK: Record<Role, number> = { READ_ONLY: 0, SUPPORT: 1, ADMIN: 2, OWNER: 3 };

/** What each console action needs; mirrors the server's auth scopes so no visible button fails. */
export const REQUIRED = {
  viewAudit: 'SUPPORT',
  viewWebhookPayloads: 'SUPPORT',
  exportAudit: 'ADMIN',
  verifyAudit: 'ADMIN',
  rotateSigningKey: 'OWNER',
  setComplianceThresholds: 'ADMIN',
  setComplianceSettings: 'ADMIN',
  viewTokenKeys: 'SUPPORT',
  createCustomer: 'SUPPORT',
  updateCustomer: 'SUPPORT',
  deleteCustomer: 'ADMIN',
  suspendLicense: 'SUPPORT',
  reinstateLicense: 'SUPPORT',
  revokeLicense: 'ADMIN',
  renewLicense: 'ADMIN',
  updateLicense: 'ADMIN',
  createLicense: 'ADMIN',
  releaseActivation: 'SUPPORT',
  releaseLease: 'SUPPORT',
  offline: 'SUPPORT',
  editCatalog: 'ADMIN',
  viewMembers: 'ADMIN',
  manageApiTokens: 'ADMIN',
  createMember: 'ADMIN',
  manageMembers: 'ADMIN',
  manageWebhooks: 'ADMIN',
} as const satisfies Record<string, Role>;

export type Action = keyof typeof REQUIRED;

/** Whether `role` gives more than `than`. */
export const outranks = (role: Role, than: Role): boolean => RANK[role] > RANK[than];

export function can(role: Role | null | undefined, action: Action): boolean {
  if (!role) return false;
  return RANK[role] >= RANK[REQUIRED[action]];
}

export const ROLE_LABEL: Record<Role, string> = {
  OWNER: 'Owner',
  ADMIN: 'Admin',
  SUPPORT: 'Support',
  READ_ONLY: 'Read-only',
};

export const ROLES: Role[] = ['OWNER', 'ADMIN', 'SUPPORT', 'READ_ONLY'];

/**
 * Whether a member with `role` may change, reset or remove a member whose role is `target`: an ADMIN the
 * members below OWNER, an OWNER anyone (the server refuses the rest with FORBIDDEN).
 */
export function canManageMember(role: Role | null | undefined, target: Role): boolean {
  return can(role, 'manageMembers') && (target !== 'OWNER' || role === 'OWNER');
}

/**
 * The roles a member may give a new API token, a new member or a member's role change: OWNER only from an owner
 * (the server refuses it otherwise).
 */
export function grantableRoles(role: Role | null | undefined): Role[] {
  return ROLES.filter((r) => r !== 'OWNER' || role === 'OWNER');
}
