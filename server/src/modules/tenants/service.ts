import { randomUUID } from 'node:crypto';
import type { Role } from '@tessera/db/client';
import type { PrismaClient } from '@tessera/db/database';
import { GraphQLError } from 'graphql';
import { z } from 'zod';
import type { Actor } from '../../context.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import { type EventInput, inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import { uniqueOr } from '../common/db.ts';
import { email, name, parse, password, slug, textProblems } from '../common/validate.ts';
import { atLeast, hasRole, rolesAbove } from './roles.ts';
import { decoyHash, hashPassword, hashSecret, newSecret, verifyPassword } from './secrets.ts';

export const SESSION_COOKIE = 'tessera_session';
const SESSION_TTL_MS = 12 * 3600_000;
/** However much it is used, a session ends this long after its sign-in: a stolen cookie cannot be kept alive forever. */
export const SESSION_MAX_AGE_MS = 7 * 24 * 3600_000;
const roles = z.enum(['OWNER', 'ADMIN', 'SUPPORT', 'READ_ONLY']);

function requireTenant(actor: Actor): string {
  if (actor.kind === 'anonymous') throw new Error('unreachable: tenant operation without a tenant');
  return actor.tenantId;
}

/** Creates a tenant with its first OWNER API token (shown once, here). Operator-only. */
export async function createTenant(ctx: ServiceContext, input: { slug: string; name?: string | null }) {
  const data = parse(z.object({ slug, name: name.optional().nullable() }), input);
  const token = newSecret('tsr');
  const tenantId = randomUUID();
  const scoped: ServiceContext = { ...ctx, actor: { kind: 'operator', tenantId } };
  const tenant = await inTransaction(scoped, tenantId, async (tx, emit) => {
    const existing = await tx.tenant.findUnique({ where: { slug: data.slug }, select: { id: true } });
    if (existing) throw new ConflictError(`tenant "${data.slug}" already exists`);
    const tenant = await uniqueOr(`tenant "${data.slug}" already exists`, () =>
      tx.tenant.create({ data: { id: tenantId, slug: data.slug, name: data.name ?? data.slug } }),
    );
    const apiToken = await tx.apiToken.create({
      data: { tenantId: tenant.id, name: 'Initial owner token', role: 'OWNER', tokenHash: token.hash, prefix: token.prefix },
    });
    emit({ type: 'tenant.created', subjectType: 'Tenant', subjectId: tenant.id, payload: { slug: tenant.slug } });
    emit({ type: 'api_token.created', subjectType: 'ApiToken', subjectId: apiToken.id, payload: { role: 'OWNER' } });
    return tenant;
  });
  return { tenant, adminToken: token.secret };
}

export async function createMember(
  ctx: ServiceContext,
  input: { email: string; name?: string | null; password: string; role: Role },
) {
  const tenantId = requireTenant(ctx.actor);
  const data = parse(z.object({ email, name: name.optional().nullable(), password, role: roles }), input);
  if (data.role === 'OWNER' && !hasRole(ctx.actor, 'OWNER')) {
    throw new ValidationError([{ path: 'role', message: 'only an owner can add another owner' }]);
  }
  const passwordHash = await hashPassword(data.password);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const clash = await tx.user.findUnique({ where: { tenantId_email: { tenantId, email: data.email } }, select: { id: true } });
    if (clash) throw new ConflictError(`a member with email ${data.email} already exists`);
    const user = await uniqueOr(`a member with email ${data.email} already exists`, () => tx.user.create({ data: { tenantId, email: data.email, name: data.name ?? null, passwordHash, role: data.role } }));
    emit({ type: 'member.created', subjectType: 'User', subjectId: user.id, payload: { email: user.email, role: user.role } });
    return user;
  });
}

const isOwner = (actor: Actor) => hasRole(actor, 'OWNER');
const forbidden = (message: string) => new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });

/**
 * The member `memberId` of the caller's tenant, for a change by the caller, inside `tx`. Member changes of a
 * tenant are serialised by a lock on its row (FOR NO KEY UPDATE: inserts elsewhere that reference the tenant
 * are not held up), so "another owner remains", read after the lock, still holds at commit however many
 * demotions or removals run at once, on however many instances. The member's own row is then locked too:
 * createApiToken shares that lock, so a token the member creates meanwhile is either refused (made after the
 * change) or committed before the change revokes their tokens, and revoked with them. Only an owner may touch
 * an owner, as only an owner can make one (createMember, createApiToken, revokeApiToken).
 */
async function memberForChange(ctx: ServiceContext, tx: Tx, tenantId: string, memberId: string) {
  await tx.$queryRaw`SELECT id FROM "Tenant" WHERE id = ${tenantId}::uuid FOR NO KEY UPDATE`;
  await tx.$queryRaw`SELECT id FROM "User" WHERE id = ${memberId}::uuid AND "tenantId" = ${tenantId}::uuid FOR UPDATE`;
  const member = await tx.user.findFirst({ where: { id: memberId, tenantId } });
  if (!member) throw new NotFoundError('Member');
  if (member.role === 'OWNER' && !isOwner(ctx.actor)) throw forbidden('Only an owner can change or remove an owner');
  const otherOwners = () => tx.user.count({ where: { tenantId, role: 'OWNER', id: { not: memberId } } });
  return { member, otherOwners };
}

/** The caller's own session, which a change the caller makes to their own account leaves running. */
const ownSession = (actor: Actor) => (actor.kind === 'user' ? actor.sessionId : null);

/** Ends a member's sessions (but `keep`); their open sockets close when the event reaches security/sockets.ts. */
async function endSessions(tx: Tx, userId: string, keep: string | null) {
  await tx.session.deleteMany({ where: { userId, ...(keep ? { id: { not: keep } } : {}) } });
}

/**
 * Revokes the member's unrevoked API tokens (only those of `roles`, when given), each audited as a revocation
 * with `reason`; their open sockets close when the events reach security/sockets.ts. Tokens made by the member's
 * tokens count as the member's (createApiToken), so no chain of tokens outlives the member's access.
 */
async function revokeTokensOf(tx: Tx, emit: (e: EventInput) => void, tenantId: string, memberId: string, reason: 'member_removed' | 'member_demoted', roles?: Role[]) {
  const revoked = await tx.apiToken.updateManyAndReturn({
    where: { tenantId, createdById: memberId, revokedAt: null, ...(roles ? { role: { in: roles } } : {}) },
    data: { revokedAt: new Date() },
    select: { id: true, name: true },
  });
  for (const t of revoked) emit({ type: 'api_token.revoked', subjectType: 'ApiToken', subjectId: t.id, payload: { name: t.name, reason } });
}

/**
 * Gives a member another role; the tenant's last owner keeps theirs. Ends the member's other sessions, and
 * revokes the API tokens they made with a role above the new one.
 */
export async function changeMemberRole(ctx: ServiceContext, memberId: string, input: { role: Role }) {
  const tenantId = requireTenant(ctx.actor);
  const { role } = parse(z.object({ role: roles }), input);
  if (role === 'OWNER' && !isOwner(ctx.actor)) throw ValidationError.field('role', 'only an owner can make a member an owner');
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const { member, otherOwners } = await memberForChange(ctx, tx, tenantId, memberId);
    if (member.role === role) return member;
    if (member.role === 'OWNER' && (await otherOwners()) === 0) {
      throw new ConflictError('the last owner of the tenant cannot be given another role; make another member an owner first');
    }
    const row = await tx.user.update({ where: { id: member.id }, data: { role } });
    await endSessions(tx, member.id, ctx.actor.kind === 'user' && ctx.actor.userId === member.id ? ownSession(ctx.actor) : null);
    emit({ type: 'member.role_changed', subjectType: 'User', subjectId: member.id, payload: { email: member.email, role: { from: member.role, to: role } } });
    if (!atLeast(role, member.role)) await revokeTokensOf(tx, emit, tenantId, member.id, 'member_demoted', rolesAbove(role));
    return row;
  });
}

/** Removes a member (and their sessions), revoking the API tokens they made; the tenant's last owner stays. */
export async function removeMember(ctx: ServiceContext, memberId: string) {
  const tenantId = requireTenant(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const { member, otherOwners } = await memberForChange(ctx, tx, tenantId, memberId);
    if (member.role === 'OWNER' && (await otherOwners()) === 0) {
      throw new ConflictError('the last owner of the tenant cannot be removed; make another member an owner first');
    }
    // Sessions go with the row (ON DELETE CASCADE).
    await tx.user.delete({ where: { id: member.id } });
    emit({ type: 'member.removed', subjectType: 'User', subjectId: member.id, payload: { email: member.email, role: member.role } });
    await revokeTokensOf(tx, emit, tenantId, member.id, 'member_removed');
    return member;
  });
}

/** Sets a new password for another member, ending all their sessions. One's own goes through changePassword. */
export async function resetMemberPassword(ctx: ServiceContext, memberId: string, input: { password: string }) {
  const tenantId = requireTenant(ctx.actor);
  const data = parse(z.object({ password }), input);
  // Without the current password a stolen session could lock the member out; changePassword asks for it.
  if (ctx.actor.kind === 'user' && ctx.actor.userId === memberId) {
    throw ValidationError.field('memberId', 'to change your own password, give the current one (changePassword)');
  }
  const passwordHash = await hashPassword(data.password);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const { member } = await memberForChange(ctx, tx, tenantId, memberId);
    const row = await tx.user.update({ where: { id: member.id }, data: { passwordHash } });
    await endSessions(tx, member.id, null);
    emit({ type: 'member.password_reset', subjectType: 'User', subjectId: member.id, payload: { email: member.email } });
    return row;
  });
}

/** The signed-in member's new password, given the current one; their other sessions end, this one stays. */
export async function changePassword(ctx: ServiceContext, input: { currentPassword: string; newPassword: string }) {
  const actor = ctx.actor;
  if (actor.kind !== 'user') throw forbidden('Only a signed-in member has a password to change');
  const data = parse(z.object({ currentPassword: z.string().max(256, 'must be at most 256 characters'), newPassword: password }), input);
  const user = await ctx.prisma.user.findUnique({ where: { id: actor.userId } });
  // Removed since this request authenticated.
  if (!user) throw forbidden('Only a signed-in member has a password to change');
  if (!(await verifyPassword(user.passwordHash, data.currentPassword))) {
    throw new ValidationError([{ path: 'currentPassword', message: 'is incorrect' }], 'The current password is incorrect');
  }
  if (data.newPassword === data.currentPassword) throw ValidationError.field('newPassword', 'must differ from the current password');
  const passwordHash = await hashPassword(data.newPassword);
  return inTransaction(ctx, actor.tenantId, async (tx, emit) => {
    const row = await tx.user.update({ where: { id: user.id }, data: { passwordHash } });
    await endSessions(tx, user.id, actor.sessionId);
    emit({ type: 'member.password_changed', subjectType: 'User', subjectId: user.id, payload: { email: user.email } });
    return row;
  });
}

/** The longest an API token may be issued for: ten years. */
const MAX_TOKEN_LIFETIME_MS = 3_650 * 24 * 3_600_000;

/**
 * The member a new API token is made for, and the most it may give, read inside `tx`. A session makes a token
 * of its member; a token makes one of the member that made it (so a chain of tokens goes when the member goes).
 * The member's row is read under a share lock, which their removal or change of role (memberForChange) waits
 * for or makes this wait: a token made meanwhile is committed before the change revokes the member's tokens, or
 * is refused here because the member is gone or no longer has the role. A token creating one must itself
 * still be valid (it may have been revoked since the request authenticated).
 */
async function tokenIssuer(ctx: ServiceContext, tx: Tx, tenantId: string): Promise<{ memberId: string | null; role: Role | null; expiresAt: Date | null }> {
  const actor = ctx.actor;
  if (actor.kind === 'operator' || actor.kind === 'anonymous') return { memberId: null, role: null, expiresAt: null };
  const memberId =
    actor.kind === 'user'
      ? actor.userId
      : ((await tx.apiToken.findUnique({ where: { id: actor.tokenId }, select: { createdById: true } }))?.createdById ?? null);
  let role: Role = actor.role;
  if (memberId) {
    const [member] = await tx.$queryRaw<{ role: Role }[]>`SELECT role::text AS role FROM "User" WHERE id = ${memberId}::uuid AND "tenantId" = ${tenantId}::uuid FOR SHARE`;
    if (!member) throw forbidden('The member this credential belongs to is no longer a member of the tenant');
    if (!atLeast(member.role, role)) role = member.role;
  }
  let expiresAt: Date | null = null;
  if (actor.kind === 'token') {
    const [parent] = await tx.$queryRaw<{ revokedAt: Date | null; expiresAt: Date | null }[]>`
      SELECT "revokedAt", "expiresAt" FROM "ApiToken" WHERE id = ${actor.tokenId}::uuid FOR SHARE`;
    if (!parent || parent.revokedAt || (parent.expiresAt && parent.expiresAt.getTime() <= Date.now())) {
      throw new GraphQLError('This API token no longer authenticates', { extensions: { code: 'UNAUTHENTICATED' } });
    }
    expiresAt = parent.expiresAt;
  }
  // The role the request authenticated with may have been lowered since.
  if (!atLeast(role, 'ADMIN')) throw forbidden('Your role does not allow this operation');
  return { memberId, role, expiresAt };
}

export async function createApiToken(ctx: ServiceContext, input: { name: string; role: Role; expiresAt?: Date | null }) {
  const tenantId = requireTenant(ctx.actor);
  const now = Date.now();
  const expiresAt = z
    .date()
    .refine((d) => d.getTime() > now, 'must be in the future')
    .refine((d) => d.getTime() <= now + MAX_TOKEN_LIFETIME_MS, 'must be at most ten years ahead')
    .nullable()
    .optional();
  const data = parse(z.object({ name, role: roles, expiresAt }), input);
  const ownerOnly = () => new ValidationError([{ path: 'role', message: 'only an owner can create an owner token' }]);
  if (data.role === 'OWNER' && !hasRole(ctx.actor, 'OWNER')) throw ownerOnly();
  const token = newSecret('tsr');
  const apiToken = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const issuer = await tokenIssuer(ctx, tx, tenantId);
    // Never above the role of who makes it (OWNER is the only role above ADMIN, the least that gets here).
    if (issuer.role && !atLeast(issuer.role, data.role)) throw ownerOnly();
    // Access given for a while stays given for that while: a token that expires cannot mint one that lasts longer.
    if (issuer.expiresAt && (!data.expiresAt || data.expiresAt.getTime() > issuer.expiresAt.getTime())) {
      throw ValidationError.field('expiresAt', `must be at most ${issuer.expiresAt.toISOString()}: a token cannot outlive the token that creates it`);
    }
    const row = await tx.apiToken.create({
      data: {
        tenantId,
        name: data.name,
        role: data.role,
        tokenHash: token.hash,
        prefix: token.prefix,
        createdById: issuer.memberId,
        expiresAt: data.expiresAt ?? null,
      },
    });
    emit({ type: 'api_token.created', subjectType: 'ApiToken', subjectId: row.id, payload: { name: row.name, role: row.role, expiresAt: row.expiresAt?.toISOString() ?? null } });
    return row;
  });
  return { apiToken, secret: token.secret };
}

export async function revokeApiToken(ctx: ServiceContext, id: string) {
  const tenantId = requireTenant(ctx.actor);
  return inTransaction(ctx, tenantId, async (tx, emit) => {
    const found = await tx.apiToken.findFirst({ where: { id, tenantId } });
    if (!found) throw new NotFoundError('API token');
    // As only an owner can mint an owner token, only an owner can take one away.
    if (found.role === 'OWNER' && !(ctx.actor.kind === 'operator' || (ctx.actor.kind !== 'anonymous' && ctx.actor.role === 'OWNER'))) {
      throw new GraphQLError('Only an owner can revoke an owner token', { extensions: { code: 'FORBIDDEN' } });
    }
    // Conditional, so that of two revocations at once (this and a member's removal, say) one revokes and records it.
    const [row] = await tx.apiToken.updateManyAndReturn({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
    if (!row) throw new ConflictError('API token is already revoked');
    emit({ type: 'api_token.revoked', subjectType: 'ApiToken', subjectId: id, payload: { name: row.name } });
    return row;
  });
}

/** Email + password for a tenant's console. The same error, and similar time, whatever is wrong. */
export async function signIn(ctx: ServiceContext, input: { tenant: string; email: string; password: string }) {
  const bad = () => new ValidationError([{ path: 'password', message: 'email or password is incorrect' }], 'Email or password is incorrect');
  const parsed = z.object({ tenant: z.string().max(40), email: z.string().trim().toLowerCase().max(254), password: z.string().max(256) }).safeParse(input);
  if (!parsed.success || textProblems(input).length) throw bad();
  const { tenant, email: address, password: pw } = parsed.data;
  const user = await ctx.prisma.user.findFirst({ where: { email: address, tenant: { slug: tenant } } });
  const ok = await verifyPassword(user?.passwordHash ?? (await decoyHash()), pw);
  if (!user || !ok) throw bad();
  const secret = newSecret('tss');
  const scoped: ServiceContext = { ...ctx, actor: { kind: 'user', tenantId: user.tenantId, userId: user.id, role: user.role, sessionId: '' } };
  const session = await inTransaction(scoped, user.tenantId, async (tx, emit) => {
    const s = await tx.session.create({ data: { userId: user.id, tokenHash: secret.hash, expiresAt: new Date(Date.now() + SESSION_TTL_MS) } });
    await tx.user.update({ where: { id: user.id }, data: { lastLoginAt: new Date() } });
    emit({ type: 'member.signed_in', subjectType: 'User', subjectId: user.id });
    return s;
  });
  return { user, session, secret: secret.secret };
}

/** Ends the caller's session. Given the request's context, the sign-out is audited like any other change. */
export async function signOut(prisma: PrismaClient, actor: Actor, ctx?: ServiceContext) {
  if (actor.kind !== 'user') return false;
  if (!ctx) {
    await prisma.session.deleteMany({ where: { id: actor.sessionId } });
    return true;
  }
  return inTransaction({ ...ctx, prisma, actor }, actor.tenantId, async (tx, emit) => {
    const { count } = await tx.session.deleteMany({ where: { id: actor.sessionId } });
    if (count) emit({ type: 'member.signed_out', subjectType: 'User', subjectId: actor.userId });
    return true;
  });
}

// Last-used times are written at most once a minute per credential to keep reads cheap.
const TOUCH_EVERY_MS = 60_000;

/** Resolves a bearer token or session cookie to an actor; anything unknown is anonymous. */
export async function authenticate(prisma: PrismaClient, bearer: string | null, sessionSecret: string | null): Promise<Actor> {
  const now = Date.now();
  if (bearer) {
    const token = await prisma.apiToken.findUnique({ where: { tokenHash: hashSecret(bearer) } });
    if (!token || token.revokedAt || (token.expiresAt && token.expiresAt.getTime() <= now)) return { kind: 'anonymous' };
    if (!token.lastUsedAt || now - token.lastUsedAt.getTime() > TOUCH_EVERY_MS) {
      await prisma.apiToken.update({ where: { id: token.id }, data: { lastUsedAt: new Date(now) } });
    }
    return { kind: 'token', tenantId: token.tenantId, tokenId: token.id, role: token.role };
  }
  if (sessionSecret) {
    const session = await prisma.session.findUnique({ where: { tokenHash: hashSecret(sessionSecret) }, include: { user: true } });
    const endOfLife = session ? session.createdAt.getTime() + SESSION_MAX_AGE_MS : 0;
    if (!session || session.expiresAt.getTime() <= now || endOfLife <= now) return { kind: 'anonymous' };
    if (now - session.lastUsedAt.getTime() > TOUCH_EVERY_MS) {
      // Slides on use, but never past its maximum age.
      const expiresAt = new Date(Math.min(now + SESSION_TTL_MS, endOfLife));
      await prisma.session.update({ where: { id: session.id }, data: { lastUsedAt: new Date(now), expiresAt } });
    }
    return { kind: 'user', tenantId: session.user.tenantId, userId: session.userId, sessionId: session.id, role: session.user.role };
  }
  return { kind: 'anonymous' };
}

/**
 * Which of these credentials (hashed) still authenticate, by the rules of authenticate() but without its
 * writes: re-checking an open socket is no use of the credential, so it neither touches nor extends it.
 */
export async function stillValid(prisma: PrismaClient, hashes: { tokens: string[]; sessions: string[] }): Promise<Set<string>> {
  const [tokens, sessions] = await Promise.all([
    hashes.tokens.length
      ? prisma.apiToken.findMany({
          where: { tokenHash: { in: hashes.tokens }, revokedAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] },
          select: { tokenHash: true },
        })
      : [],
    hashes.sessions.length
      ? prisma.session.findMany({
          where: { tokenHash: { in: hashes.sessions }, expiresAt: { gt: new Date() }, createdAt: { gt: new Date(Date.now() - SESSION_MAX_AGE_MS) } },
          select: { tokenHash: true },
        })
      : [],
  ]);
  return new Set([...tokens, ...sessions].map((r) => r.tokenHash));
}

export function bearerOf(header: string | null | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return m ? m[1]! : null;
}

export function cookieValue(header: string | null, key: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k !== key) continue;
    // A malformed escape is no credential; it must not fail the whole request.
    try {
      return decodeURIComponent(v.join('='));
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * The session cookie. The browser keeps it for the session's whole possible life (SESSION_MAX_AGE_MS): the
 * server ends the session after SESSION_TTL_MS without use or at that age, whichever comes first. A cookie
 * that lived only SESSION_TTL_MS from sign-in signed out a member in use all day at the 12th hour.
 */
export function sessionCookie(secret: string | null, secure: boolean): string {
  const attrs = ['Path=/', 'HttpOnly', 'SameSite=Lax', ...(secure ? ['Secure'] : [])];
  return secret === null
    ? `${SESSION_COOKIE}=; Max-Age=0; ${attrs.join('; ')}`
    : `${SESSION_COOKIE}=${secret}; Max-Age=${SESSION_MAX_AGE_MS / 1000}; ${attrs.join('; ')}`;
}
