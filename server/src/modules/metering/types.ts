import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../builder.ts';
import { parseId } from '../common/ids.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { ADMIN_ERRORS, CLIENT_ERRORS } from '../common/types.ts';
import { commitUsage, type ReconciliationRow, releaseUsage, type TicketView, useMeter, usageReconciliation } from './service.ts';

const UsageTicketStatusEnum = builder.enumType('UsageTicketStatus', { values: ['AUTHORIZED', 'COMMITTED', 'RELEASED', 'EXPIRED'] as const });

const UsageTicketType = builder.objectRef<TicketView>('UsageTicket').implement({
  fields: (t) => ({
    id: t.id({ resolve: (v) => encodeGlobalID('UsageTicket', v.ticket.id) }),
    status: t.field({ type: UsageTicketStatusEnum, resolve: (v) => v.ticket.status }),
    quantity: t.int({
      description: 'The committed quantity once COMMITTED; the authorized one before.',
      resolve: (v) => v.ticket.committed ?? v.ticket.quantity,
    }),
    authorized: t.int({ resolve: (v) => v.ticket.quantity }),
    meter: t.string({ resolve: (v) => v.ticket.meter }),
    window: t.string({ description: 'The quota period the use counts in: "all", "YYYY", "YYYY-MM" or "YYYY-MM-DD" (UTC).', resolve: (v) => v.ticket.window }),
    remaining: t.int({ nullable: true, description: 'Quota left in the window right after this operation.', resolve: (v) => v.remaining }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, description: 'An AUTHORIZED ticket must be committed before this.', resolve: (v) => v.ticket.expiresAt }),
    receipt: t.string({ description: 'Compact JWS signed by the tenant key.', resolve: (v) => v.receipt }),
  }),
});

const AuthorizeUsageInput = builder.inputType('AuthorizeUsageInput', {
  fields: (t) => ({
    key: t.string({ required: true }),
    fingerprint: t.string(),
    meter: t.string({ required: true }),
    quantity: t.int({ required: true }),
    idempotencyKey: t.string({ required: true, description: 'Same key and parameters return the original ticket; other parameters fail.' }),
  }),
});

const CommitUsageInput = builder.inputType('CommitUsageInput', {
  fields: (t) => ({
    ticketId: t.id({ required: true }),
    key: t.string({ required: true }),
    quantity: t.int({ description: 'At most the authorized quantity; all of it when omitted.' }),
  }),
});

const UsageTicketInput = builder.inputType('UsageTicketInput', {
  fields: (t) => ({ ticketId: t.id({ required: true }), key: t.string({ required: true }) }),
});

builder.mutationFields((t) => ({
  authorizeUsage: t.field({
    type: UsageTicketType,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: AuthorizeUsageInput, required: true }) },
    resolve: (_r, { input }, ctx) => useMeter(ctx, 'authorize', input),
  }),
  commitUsage: t.field({
    type: UsageTicketType,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: CommitUsageInput, required: true }) },
    resolve: (_r, { input }, ctx) => commitUsage(ctx, { ...input, ticketId: String(input.ticketId) }),
  }),
  recordUsage: t.field({
    type: UsageTicketType,
    errors: { types: CLIENT_ERRORS },
    args: { input: t.arg({ type: AuthorizeUsageInput, required: true }) },
    resolve: (_r, { input }, ctx) => useMeter(ctx, 'record', input),
  }),
  releaseUsage: t.field({
    type: UsageTicketType,
    errors: { types: CLIENT_ERRORS },
    description: 'Gives an authorized ticket back without using it.',
    args: { input: t.arg({ type: UsageTicketInput, required: true }) },
    resolve: (_r, { input }, ctx) => releaseUsage(ctx, { ticketId: String(input.ticketId), key: input.key }),
  }),
}));

// ---------------------------------------------------------------------------------------------
// Admin

const UsageBalanceCheck = builder.objectRef<ReconciliationRow>('UsageBalanceCheck').implement({
  description: 'One balance row beside what the append-only ledger and the open tickets say it must hold.',
  fields: (t) => ({
    licenseId: t.id({ resolve: (r) => encodeGlobalID('License', r.licenseId) }),
    meter: t.exposeString('meter'),
    window: t.exposeString('window'),
    quota: t.exposeInt('quota'),
    used: t.exposeInt('used'),
    reserved: t.exposeInt('reserved'),
    ledgerUsed: t.exposeInt('ledgerUsed', { description: 'Sum of the ledger entries of this window.' }),
    openReserved: t.exposeInt('openReserved', { description: 'Sum of the AUTHORIZED tickets of this window.' }),
    consistent: t.exposeBoolean('consistent'),
  }),
});

const UsageReconciliation = builder.objectRef<ReconciliationRow[]>('UsageReconciliation').implement({
  fields: (t) => ({
    consistent: t.boolean({ resolve: (rows) => rows.every((r) => r.consistent) }),
    balances: t.field({ type: [UsageBalanceCheck], resolve: (rows) => rows }),
  }),
});

builder.queryFields((t) => ({
  usageReconciliation: t.field({
    type: UsageReconciliation,
    authScopes: { role: 'READ_ONLY' },
    errors: { types: ADMIN_ERRORS },
    description: "Usage balances re-derived from the ledger (the source of truth); the tenant's, or one license's.",
    args: { licenseId: t.arg.id() },
    resolve: (_r, args, ctx) =>
      usageReconciliation(ctx, tenantWhere(ctx.actor).tenantId, args.licenseId ? parseId(String(args.licenseId), 'License', 'licenseId') : null),
  }),
}));
