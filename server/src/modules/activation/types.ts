import { builder } from '../../builder.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { LicenseTypeEnum } from '../catalog/types.ts';
import { LicenseStatusEnum } from '../licenses/enums.ts';
import { licenseStatus } from '../licenses/service.ts';

export const ActivationStatusEnum = builder.enumType('ActivationStatus', { values: ['ACTIVE', 'INACTIVE', 'RELEASED'] as const });

/** What a client may know about its own license (CONTRACT.md). */
export const LicenseInfo = builder.prismaObject('License', {
  variant: 'LicenseInfo',
  select: { state: true, expiresAt: true },
  fields: (t) => ({
    status: t.field({ type: LicenseStatusEnum, resolve: (l) => licenseStatus(l) }),
    type: t.expose('type', { type: LicenseTypeEnum }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    revision: t.exposeInt('revision'),
    maxActivations: t.exposeInt('maxActivations', { nullable: true }),
    activationsUsed: t.exposeInt('activationsUsed'),
    features: t.exposeStringList('features'),
  }),
});

export const ActivationType = builder.prismaNode('Activation', {
  id: { field: 'id' },
  findUnique: (id, ctx) => ({ id, ...tenantWhere(ctx.actor) }),
  fields: (t) => ({
    status: t.expose('status', { type: ActivationStatusEnum }),
    fingerprint: t.exposeString('fingerprint'),
    activatedAt: t.expose('activatedAt', { type: 'DateTime' }),
    lastHeartbeatAt: t.expose('lastHeartbeatAt', { type: 'DateTime', nullable: true }),
    license: t.relation('license', { type: LicenseInfo }),
    hostname: t.exposeString('hostname', { nullable: true }),
    platform: t.exposeString('platform', { nullable: true }),
    osVersion: t.exposeString('osVersion', { nullable: true }),
    appVersion: t.exposeString('appVersion', { nullable: true }),
    goodwill: t.exposeBoolean('goodwill'),
    offline: t.exposeBoolean('offline'),
    releasedAt: t.expose('releasedAt', { type: 'DateTime', nullable: true }),
  }),
});
