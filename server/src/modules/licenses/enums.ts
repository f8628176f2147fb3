import { builder } from '../../builder.ts';

export const LicenseStatusEnum = builder.enumType('LicenseStatus', { values: ['ACTIVE', 'EXPIRED', 'SUSPENDED', 'REVOKED'] as const });
export const SyncStateEnum = builder.enumType('SyncState', { values: ['SYNCED', 'PENDING_SYNC'] as const });
