import type { Prisma } from '@tessera/db/client';
import type { PrismaClient } from '@tessera/db/database';
import type { Actor, AppDeps } from '../../context.ts';
import type { DomainEvent } from './bus.ts';

/** What services need from a request; the GraphQL context satisfies it, tests build one directly. */
export interface ServiceContext {
  app: AppDeps;
  prisma: PrismaClient;
  actor: Actor;
  requestId: string;
}

export type Tx = Prisma.TransactionClient;

export interface EventInput {
  type: string;
  subjectType: string;
  subjectId: string;
  licenseId?: string | null;
  customerId?: string | null;
  payload?: Record<string, unknown>;
  /** Defaults to the request's actor. */
  actor?: { type: string; id: string | null };
}

export function actorOf(actor: Actor): { type: string; id: string | null } {
  switch (actor.kind) {
    case 'user':
      return { type: 'user', id: actor.userId };
    case 'token':
      return { type: 'api_token', id: actor.tokenId };
    case 'operator':
      return { type: 'operator', id: null };
    case 'anonymous':
      return { type: 'anonymous', id: null };
  }
}

/**
 * Runs `fn` in one database transaction; the events it emits are written to the audit log inside
 * that transaction and published only after it commits. A failure leaves no row and no event.
 */
export async function inTransaction<T>(
  ctx: ServiceContext,
  tenantId: string,
  fn: (tx: Tx, emit: (event: EventInput) => void) => Promise<T>,
): Promise<T> {
  const { result, events } = await ctx.prisma.$transaction(async (tx) => {
    const pending: EventInput[] = [];
    const result = await fn(tx, (e) => pending.push(e));
    const events = pending.length ? await writeEvents(tx, ctx, tenantId, pending) : [];
    return { result, events };
  });
  if (events.length) ctx.app.bus.publish(events);
  return result;
}

async function writeEvents(tx: Tx, ctx: ServiceContext, tenantId: string, pending: EventInput[]): Promise<DomainEvent[]> {
  const fallback = actorOf(ctx.actor);
  const rows = await tx.auditEvent.createManyAndReturn({
    data: pending.map((e) => {
      const actor = e.actor ?? fallback;
      return {
        tenantId,
        type: e.type,
        actorType: actor.type,
        actorId: actor.id,
        subjectType: e.subjectType,
        subjectId: e.subjectId,
        licenseId: e.licenseId ?? null,
        customerId: e.customerId ?? null,
        payload: (e.payload ?? {}) as Prisma.InputJsonValue,
        requestId: ctx.requestId,
      };
    }),
  });
  return rows.map((r) => ({
    id: r.id.toString(),
    tenantId: r.tenantId,
    type: r.type,
    occurredAt: r.occurredAt.toISOString(),
    actorType: r.actorType,
    actorId: r.actorId,
    subjectType: r.subjectType,
    subjectId: r.subjectId,
    licenseId: r.licenseId,
    customerId: r.customerId,
    payload: r.payload,
    requestId: r.requestId,
  }));
}

/** A field-by-field diff of an update, for the event payload. */
export function diff(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const [k, to] of Object.entries(after)) {
    const from = before[k];
    if (JSON.stringify(from) !== JSON.stringify(to)) out[k] = { from, to };
  }
  return out;
}
