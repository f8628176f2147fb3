import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../builder.ts';
import { ADMIN_ERRORS } from '../common/types.ts';
import { parseId } from '../common/ids.ts';
import { tenantWhere } from '../common/tenancy.ts';
import {
  type ComplianceSettingsView,
  complianceSettings,
  type ComplianceSummary,
  complianceSummary,
  type LicenseCompliance,
  MAX_LISTED,
  setComplianceSettings,
  setThresholds,
} from './service.ts';

const ComplianceStatusEnum = builder.enumType('ComplianceStatus', {
  values: {
    OK: { description: 'Within every threshold.' },
    WARNING: { description: 'At or above a threshold, expiring within a lead time, or with devices past their heartbeat.' },
    VIOLATION: { description: 'Over a cap (goodwill zone), or expired while still in use.' },
  } as const,
});
const ComplianceMetricEnum = builder.enumType('ComplianceMetric', { values: ['ACTIVATIONS', 'SEATS'] as const });

const Crossing = builder.objectRef<LicenseCompliance['crossed'][number]>('ComplianceCrossing').implement({
  fields: (t) => ({
    metric: t.expose('metric', { type: ComplianceMetricEnum }),
    percent: t.exposeInt('percent'),
    crossedAt: t.expose('crossedAt', { type: 'DateTime' }),
  }),
});

const LicenseComplianceRef = builder.objectRef<LicenseCompliance>('LicenseCompliance').implement({
  fields: (t) => ({
    licenseId: t.id({ resolve: (l) => encodeGlobalID('License', l.licenseId) }),
    license: t.prismaField({
      type: 'License',
      resolve: (query, l, _a, ctx) => ctx.prisma.license.findUniqueOrThrow({ ...query, where: { id: l.licenseId } }),
    }),
    status: t.expose('status', { type: ComplianceStatusEnum }),
    reasons: t.exposeStringList('reasons'),
    activationsUsed: t.exposeInt('activationsUsed'),
    maxActivations: t.exposeInt('maxActivations', { nullable: true }),
    seatsInUse: t.exposeInt('seatsInUse'),
    seats: t.exposeInt('seats', { nullable: true }),
    activationThresholds: t.exposeIntList('activationThresholds'),
    seatThresholds: t.exposeIntList('seatThresholds'),
    crossed: t.field({ type: [Crossing], description: 'Thresholds the license stands at or above now.', resolve: (l) => l.crossed }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    expiringLeadDays: t.exposeIntList('expiringLeadDays', { description: 'Days before expiry at which compliance.license_expiring is raised.' }),
    heartbeatTimeouts: t.exposeInt('heartbeatTimeouts', {
      description: 'Active devices silent past the heartbeat interval plus the tolerance (not reclaimed yet).',
    }),
  }),
});

const Summary = builder.objectRef<ComplianceSummary>('ComplianceSummary').implement({
  fields: (t) => ({
    status: t.expose('status', { type: ComplianceStatusEnum, description: 'The worst status of the licenses.' }),
    ok: t.exposeInt('ok'),
    warning: t.exposeInt('warning'),
    violation: t.exposeInt('violation'),
    licenses: t.field({
      type: [LicenseComplianceRef],
      description: `The licenses, worst first (VIOLATION, WARNING, OK), then oldest first: at most ${MAX_LISTED}. The counts and the status cover every license.`,
      resolve: (s) => s.licenses,
    }),
  }),
});

builder.queryFields((t) => ({
  complianceSummary: t.field({
    type: Summary,
    description: "Compliance of the tenant's licenses: all of them, one customer's, or one license.",
    authScopes: { role: 'READ_ONLY' },
    args: { licenseId: t.arg.id(), customerId: t.arg.id() },
    resolve: (_r, args, ctx) =>
      complianceSummary(ctx.app, tenantWhere(ctx.actor).tenantId, {
        licenseId: args.licenseId == null ? null : parseId(String(args.licenseId), 'License', 'licenseId'),
        customerId: args.customerId == null ? null : parseId(String(args.customerId), 'Customer', 'customerId'),
      }),
  }),
}));

const ThresholdInput = builder.inputType('SetComplianceThresholdsInput', {
  fields: (t) => ({
    licenseId: t.id({ required: false, description: "The license; omitted for the tenant's default." }),
    metric: t.field({ type: ComplianceMetricEnum, required: true }),
    percents: t.intList({ required: true, description: 'Percent of the cap, e.g. [80, 100].' }),
  }),
});

const ThresholdsRef = builder.objectRef<{ scope: string; metric: 'ACTIVATIONS' | 'SEATS'; percents: number[] }>('ComplianceThresholds').implement({
  fields: (t) => ({
    licenseId: t.id({ nullable: true, resolve: (r) => (r.scope === '*' ? null : encodeGlobalID('License', r.scope)) }),
    metric: t.expose('metric', { type: ComplianceMetricEnum }),
    percents: t.exposeIntList('percents'),
  }),
});

builder.mutationFields((t) => ({
  setComplianceThresholds: t.field({
    type: ThresholdsRef,
    description: 'Capacity thresholds that raise compliance.threshold_crossed events, once per crossing.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: ThresholdInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      setThresholds(ctx, tenantWhere(ctx.actor).tenantId, {
        licenseId: input.licenseId == null ? null : parseId(String(input.licenseId), 'License', 'input.licenseId'),
        metric: input.metric,
        percents: input.percents,
      }),
  }),
}));

const SettingsRef = builder.objectRef<ComplianceSettingsView>('ComplianceSettings').implement({
  description: 'Expiring-soon lead times and heartbeat tolerance in force for the tenant, or for one license.',
  fields: (t) => ({
    licenseId: t.id({ nullable: true, resolve: (r) => (r.licenseId ? encodeGlobalID('License', r.licenseId) : null) }),
    expiringLeadDays: t.exposeIntList('expiringLeadDays', {
      description: 'Days before expiry at which compliance.license_expiring is raised, once per license and expiry date.',
    }),
    leadDaysOverridden: t.exposeBoolean('leadDaysOverridden', { description: 'False when inherited (license from tenant, tenant from the defaults).' }),
    heartbeatTolerancePercent: t.exposeInt('heartbeatTolerancePercent', {
      description: 'Silence allowed past heartbeatSeconds before compliance.heartbeat_timeout, in percent of it (100: one extra interval).',
    }),
  }),
});

const SettingsInput = builder.inputType('SetComplianceSettingsInput', {
  fields: (t) => ({
    licenseId: t.id({ required: false, description: "The license whose own lead days to set; omitted for the tenant's." }),
    expiringLeadDays: t.intList({ required: false, description: 'Whole days from 1 to 365, at most 10, e.g. [30, 7, 1]; [] turns the alerts off.' }),
    heartbeatTolerancePercent: t.int({ required: false, description: 'Tenant-wide, 0 to 1000.' }),
  }),
});

builder.queryFields((t) => ({
  complianceSettings: t.field({
    type: SettingsRef,
    nullable: true,
    description: "The tenant's settings, or one license's (null when the license is not the caller's).",
    authScopes: { role: 'READ_ONLY' },
    args: { licenseId: t.arg.id() },
    resolve: (_r, args, ctx) =>
      complianceSettings(ctx.app, tenantWhere(ctx.actor).tenantId, args.licenseId == null ? null : parseId(String(args.licenseId), 'License', 'licenseId')),
  }),
}));

builder.mutationFields((t) => ({
  setComplianceSettings: t.field({
    type: SettingsRef,
    description: 'Expiring-soon lead days (tenant default or per license) and the heartbeat tolerance; omitted fields keep their value.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: SettingsInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      setComplianceSettings(ctx, tenantWhere(ctx.actor).tenantId, {
        licenseId: input.licenseId == null ? null : parseId(String(input.licenseId), 'License', 'input.licenseId'),
        expiringLeadDays: input.expiringLeadDays,
        heartbeatTolerancePercent: input.heartbeatTolerancePercent,
      }),
  }),
}));
