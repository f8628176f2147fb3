import { builder } from '../../builder.ts';
import { LicensingError } from '../../errors.ts';
import { ADMIN_ERRORS } from '../common/types.ts';
import { parseId } from '../common/ids.ts';
import { importOfflineDeactivation, issueOfflineLicense, refreshOfflineLicense } from './service.ts';

const OFFLINE_ERRORS = [...ADMIN_ERRORS, LicensingError];

const OfflineLicensePayload = builder
  .objectRef<{ licenseFile: string; activationId: string; reused: boolean }>('OfflineLicensePayload')
  .implement({
    fields: (t) => ({
      licenseFile: t.exposeString('licenseFile', { description: 'Armored `-----BEGIN TESSERA LICENSE-----` file for the customer to install.' }),
      reused: t.exposeBoolean('reused', { description: 'True when the machine already held this activation (nothing new was consumed).' }),
      activation: t.prismaField({
        type: 'Activation',
        resolve: (query, p, _a, ctx) => ctx.prisma.activation.findUniqueOrThrow({ ...query, where: { id: p.activationId } }),
      }),
    }),
  });

const ImportOfflineDeactivationPayload = builder
  .objectRef<{ activationId: string; imported: boolean }>('ImportOfflineDeactivationPayload')
  .implement({
    fields: (t) => ({
      imported: t.exposeBoolean('imported', { description: 'False when this activation was already deactivated by an earlier file: nothing changed.' }),
      activation: t.prismaField({
        type: 'Activation',
        resolve: (query, p, _a, ctx) => ctx.prisma.activation.findUniqueOrThrow({ ...query, where: { id: p.activationId } }),
      }),
    }),
  });

const IssueOfflineLicenseInput = builder.inputType('IssueOfflineLicenseInput', {
  fields: (t) => ({
    licenseId: t.id({ required: true }),
    request: t.string({ description: 'The request file the customer made (`tessera-client request`).' }),
    fingerprint: t.string({ description: 'Or the machine fingerprint, typed in (no device key: deactivate from the console).' }),
  }),
});

const RefreshOfflineLicenseInput = builder.inputType('RefreshOfflineLicenseInput', {
  fields: (t) => ({ activationId: t.id({ required: true }) }),
});

const ImportOfflineDeactivationInput = builder.inputType('ImportOfflineDeactivationInput', {
  fields: (t) => ({ file: t.string({ required: true, description: 'The `-----BEGIN TESSERA DEACTIVATION-----` file from the customer.' }) }),
});

builder.mutationFields((t) => ({
  issueOfflineLicense: t.field({
    type: OfflineLicensePayload,
    description: 'Issues a license file for an air-gapped machine; counts as an activation exactly like an online one.',
    authScopes: { role: 'SUPPORT' },
    errors: { types: OFFLINE_ERRORS },
    args: { input: t.arg({ type: IssueOfflineLicenseInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      issueOfflineLicense(ctx, { ...input, licenseId: parseId(String(input.licenseId), 'License', 'licenseId') }),
  }),
  refreshOfflineLicense: t.field({
    type: OfflineLicensePayload,
    description: 'A new license file for an offline device after a renewal or entitlement change (current revision).',
    authScopes: { role: 'SUPPORT' },
    errors: { types: OFFLINE_ERRORS },
    args: { input: t.arg({ type: RefreshOfflineLicenseInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({
      ...(await refreshOfflineLicense(ctx, parseId(String(input.activationId), 'Activation', 'activationId'))),
      reused: true,
    }),
  }),
  importOfflineDeactivation: t.field({
    type: ImportOfflineDeactivationPayload,
    description: 'Imports a deactivation file: frees the activation and records its offline usage, exactly once.',
    authScopes: { role: 'SUPPORT' },
    errors: { types: OFFLINE_ERRORS },
    args: { input: t.arg({ type: ImportOfflineDeactivationInput, required: true }) },
    resolve: (_r, { input }, ctx) => importOfflineDeactivation(ctx, input.file),
  }),
}));
