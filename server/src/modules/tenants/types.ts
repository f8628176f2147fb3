import { createContextCache } from '@pothos/core';
import { encodeGlobalID } from '@pothos/plugin-relay';
import type { User } from '@tessera/db/client';
import DataLoader from 'dataloader';
import { builder } from '../../builder.ts';
import { ADMIN_ERRORS, RoleEnum } from '../common/types.ts';
import { parseId } from '../common/ids.ts';
import { nodeWhere, tenantWhere } from '../common/tenancy.ts';
import { ValidationError } from '../../errors.ts';
import type { Context } from '../../context.ts';
import {
  changeMemberRole,
  changePassword,
  createApiToken,
  createMember,
  removeMember,
  resetMemberPassword,
  revokeApiToken,
  sessionCookie,
  signIn,
  signOut,
} from './service.ts';

export const TenantType = builder.prismaObject('Tenant', {
  fields: (t) => ({
    id: t.exposeID('id'),
    slug: t.exposeString('slug'),
    name: t.exposeString('name'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

/** Who may see the tenant's members (emails, roles): the list and every other way to a Member alike. */
const MEMBER_READER = 'ADMIN' as const;

export const MemberType = builder.prismaNode('User', {
  name: 'Member',
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  // Another tenant's id, or a deleted row, resolves to null rather than an internal error.
  nullable: true,
  authScopes: { role: MEMBER_READER },
  fields: (t) => ({
    email: t.exposeString('email'),
    name: t.exposeString('name', { nullable: true }),
    role: t.expose('role', { type: RoleEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastLoginAt: t.expose('lastLoginAt', { type: 'DateTime', nullable: true }),
  }),
});

/** The caller's tenant's members by id, batched per request (the token list with each token's creator). */
const memberLoader = createContextCache(
  (ctx: Context) =>
    new DataLoader<string, User | null>(async (ids) => {
      const rows = await ctx.prisma.user.findMany({ where: { id: { in: [...ids] }, ...tenantWhere(ctx.actor) } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
);

export const ApiTokenType = builder.prismaNode('ApiToken', {
  id: { field: 'id' },
  findUnique: (id, ctx) => nodeWhere(id, ctx.actor),
  nullable: true,
  authScopes: { role: 'ADMIN' },
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.expose('role', { type: RoleEnum }),
    prefix: t.exposeString('prefix', { description: 'The first characters of the secret, to recognise it; the secret itself is shown once.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true, description: 'After this instant the token authenticates nothing (null: until revoked).' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    createdBy: t.field({
      type: MemberType,
      nullable: true,
      description:
        'The member the token was made for: the one signed in when it was created, or the member of the token that created it. Null for tokens of the operator (the tenant\'s first token) and of a member since removed. Removing the member revokes the token; demoting them revokes it if its role is above their new one.',
      resolve: (token, _a, ctx) => (token.createdById ? memberLoader(ctx).load(token.createdById) : null),
    }),
  }),
});

const Viewer = builder
  .objectRef<{ tenantId: string; role: 'OWNER' | 'ADMIN' | 'SUPPORT' | 'READ_ONLY'; memberId: string | null }>('Viewer')
  .implement({
    fields: (t) => ({
      tenantId: t.exposeID('tenantId'),
      role: t.expose('role', { type: RoleEnum }),
      memberId: t.exposeID('memberId', { nullable: true }),
    }),
  });

builder.queryFields((t) => ({
  viewer: t.field({
    type: Viewer,
    nullable: true,
    description: 'The caller: its tenant and role; null when not signed in.',
    resolve: (_r, _a, ctx) => {
      const a = ctx.actor;
      if (a.kind === 'anonymous') return null;
      return {
        tenantId: a.tenantId,
        role: a.kind === 'operator' ? 'OWNER' : a.role,
        memberId: a.kind === 'user' ? a.userId : null,
      };
    },
  }),
  tenant: t.prismaField({
    type: 'Tenant',
    authScopes: { member: true },
    resolve: (query, _r, _a, ctx) => ctx.prisma.tenant.findUniqueOrThrow({ ...query, where: { id: tenantWhere(ctx.actor).tenantId } }),
  }),
  members: t.prismaField({
    type: ['User'],
    authScopes: { role: MEMBER_READER },
    resolve: (query, _r, _a, ctx) => ctx.prisma.user.findMany({ ...query, where: tenantWhere(ctx.actor), orderBy: { email: 'asc' } }),
  }),
  apiTokens: t.prismaField({
    type: ['ApiToken'],
    authScopes: { role: 'ADMIN' },
    resolve: (query, _r, _a, ctx) =>
      ctx.prisma.apiToken.findMany({ ...query, where: tenantWhere(ctx.actor), orderBy: { createdAt: 'desc' } }),
  }),
}));

const SignInInput = builder.inputType('SignInInput', {
  fields: (t) => ({
    tenant: t.string({ required: true, description: 'Tenant slug' }),
    email: t.string({ required: true }),
    password: t.string({ required: true }),
  }),
});

const SignInSuccess = builder.objectRef<{ memberId: string; tenantId: string }>('SignInSuccess').implement({
  fields: (t) => ({ memberId: t.exposeID('memberId'), tenantId: t.exposeID('tenantId') }),
});

const CreateMemberInput = builder.inputType('CreateMemberInput', {
  fields: (t) => ({
    email: t.string({ required: true }),
    name: t.string(),
    password: t.string({ required: true }),
    role: t.field({ type: RoleEnum, required: true }),
  }),
});

const CreateApiTokenInput = builder.inputType('CreateApiTokenInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    role: t.field({ type: RoleEnum, required: true }),
    expiresAt: t.field({ type: 'DateTime', description: 'After this instant the token authenticates nothing; in the future, at most ten years ahead. Omitted or null: until revoked.' }),
  }),
});

const CreateApiTokenPayload = builder.objectRef<{ id: string; secret: string }>('CreateApiTokenPayload').implement({
  fields: (t) => ({
    token: t.exposeString('secret', { description: 'The bearer secret. It is not stored and cannot be shown again.' }),
    apiToken: t.prismaField({
      type: 'ApiToken',
      resolve: (query, p, _a, ctx) => ctx.prisma.apiToken.findUniqueOrThrow({ ...query, where: { id: p.id } }),
    }),
  }),
});

const IdInput = (name: string) =>
  builder.inputType(name, { fields: (t) => ({ id: t.id({ required: true }) }) });
const RevokeApiTokenInput = IdInput('RevokeApiTokenInput');

const memberId = (id: string | number) => parseId(String(id), 'Member', 'memberId');

const ChangeMemberRoleInput = builder.inputType('ChangeMemberRoleInput', {
  fields: (t) => ({
    memberId: t.id({ required: true }),
    role: t.field({ type: RoleEnum, required: true, description: 'Only an owner may grant OWNER; the last owner keeps it.' }),
  }),
});

const RemoveMemberInput = builder.inputType('RemoveMemberInput', { fields: (t) => ({ memberId: t.id({ required: true }) }) });

const RemoveMemberPayload = builder.objectRef<{ id: string }>('RemoveMemberPayload').implement({
  fields: (t) => ({ deletedId: t.id({ resolve: (p) => encodeGlobalID('Member', p.id) }) }),
});

const ResetMemberPasswordInput = builder.inputType('ResetMemberPasswordInput', {
  fields: (t) => ({ memberId: t.id({ required: true }), password: t.string({ required: true }) }),
});

const ChangePasswordPayload = builder.objectRef<{ memberId: string }>('ChangePasswordPayload').implement({
  fields: (t) => ({ memberId: t.exposeID('memberId') }),
});

const ChangePasswordInput = builder.inputType('ChangePasswordInput', {
  fields: (t) => ({ currentPassword: t.string({ required: true }), newPassword: t.string({ required: true }) }),
});

builder.mutationFields((t) => ({
  signIn: t.field({
    type: SignInSuccess,
    errors: { types: [ValidationError] },
    args: { input: t.arg({ type: SignInInput, required: true }) },
    resolve: async (_r, { input }, ctx) => {
      const { user, secret } = await signIn(ctx, input);
      if (ctx.transport === 'http') ctx.cookies.push(sessionCookie(secret, ctx.app.config.production));
      return { memberId: user.id, tenantId: user.tenantId };
    },
  }),
  signOut: t.boolean({
    resolve: async (_r, _a, ctx) => {
      if (ctx.transport === 'http') ctx.cookies.push(sessionCookie(null, ctx.app.config.production));
      return signOut(ctx.prisma, ctx.actor, ctx);
    },
  }),
  createMember: t.prismaField({
    type: 'User',
    description: 'Adds a member who signs in to the console. An ADMIN adds members below OWNER; only an OWNER adds an owner.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateMemberInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const user = await createMember(ctx, input);
      return ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });
    },
  }),
  changeMemberRole: t.prismaField({
    type: 'User',
    description:
      "Gives a member another role and ends the member's other sessions; a lower role revokes the API tokens made for them (ApiToken.createdBy) with a role above it. An ADMIN manages members below OWNER.",
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: ChangeMemberRoleInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const user = await changeMemberRole(ctx, memberId(input.memberId), { role: input.role });
      return ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });
    },
  }),
  removeMember: t.field({
    type: RemoveMemberPayload,
    description: 'Removes a member, ends their sessions and revokes the API tokens made for them (ApiToken.createdBy); the last owner cannot be removed.',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: RemoveMemberInput, required: true }) },
    resolve: async (_r, { input }, ctx) => ({ id: (await removeMember(ctx, memberId(input.memberId))).id }),
  }),
  resetMemberPassword: t.prismaField({
    type: 'User',
    description: "Sets another member's password and ends all their sessions.",
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: ResetMemberPasswordInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const user = await resetMemberPassword(ctx, memberId(input.memberId), { password: input.password });
      return ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });
    },
  }),
  changePassword: t.field({
    type: ChangePasswordPayload,
    description: "The signed-in member's new password, given the current one. Their other sessions end; this one stays. Wrong current passwords count as failed sign-ins.",
    authScopes: { session: true },
    errors: { types: [ValidationError] },
    args: { input: t.arg({ type: ChangePasswordInput, required: true }) },
    resolve: async (_r, { input }, ctx) => {
      const user = await changePassword(ctx, input);
      return { memberId: user.id };
    },
  }),
  createApiToken: t.field({
    type: CreateApiTokenPayload,
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: CreateApiTokenInput, required: true }) },
    resolve: async (_r, { input }, ctx) => {
      const { apiToken, secret } = await createApiToken(ctx, input);
      return { id: apiToken.id, secret };
    },
  }),
  revokeApiToken: t.prismaField({
    type: 'ApiToken',
    authScopes: { role: 'ADMIN' },
    errors: { types: ADMIN_ERRORS },
    args: { input: t.arg({ type: RevokeApiTokenInput, required: true }) },
    resolve: async (query, _r, { input }, ctx) => {
      const row = await revokeApiToken(ctx, parseId(String(input.id), 'ApiToken', 'id'));
      return ctx.prisma.apiToken.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
}));
