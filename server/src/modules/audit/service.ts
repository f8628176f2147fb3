import type { Prisma } from '@tessera/db/client';
import type { PrismaClient } from '@tessera/db/database';
import type { Actor, AppDeps } from '../../context.ts';
import { batched, inFlightFor, perApp } from '../common/batch.ts';
import { sealerOf, sealTenants } from './chain.ts';
import type { EventType } from './event-types.ts';

/** What services need from a request; the GraphQL context satisfies it, tests build one directly. */
export interface ServiceContext {
  app: AppDeps;
  prisma: PrismaClient;
  actor: Actor;
  requestId: string;
}

export type Tx = Prisma.TransactionClient;

export interface EventInput {
  type: EventType;
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
 * The rows are chained (seq, prevHash, hash) by the sealer right after commit, outside the business
 * transaction, so concurrent writers of one tenant never queue on the chain; see chain.ts.
 */
export async function inTransaction<T>(
  ctx: ServiceContext,
  tenantId: string,
  fn: (tx: Tx, emit: (event: EventInput) => void) => Promise<T>,
  /** Prisma's limit on the transaction's run time (default 5 s), for work that grows with its input. */
  options: { timeout?: number } = {},
): Promise<T> {
  const { result, wrote } = await ctx.prisma.$transaction(async (tx) => {
    const pending: EventInput[] = [];
    const result = await fn(tx, (e) => pending.push(e));
    if (pending.length) await writeEvents(tx, ctx, tenantId, pending);
    return { result, wrote: pending.length > 0 };
  }, options);
  // Not awaited: the caller's response does not wait for the chain. Sealing publishes the events.
  if (wrote) void sealerOf(ctx.app).seal(tenantId);
  return result;
}

async function writeEvents(tx: Tx, ctx: ServiceContext, tenantId: string, pending: EventInput[]): Promise<void> {
  const fallback = actorOf(ctx.actor);
  await tx.auditEvent.createMany({
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
}

interface Recorded {
  tenantId: string;
  event: EventInput;
  actor: { type: string; id: string | null };
  requestId: string;
}

const INSERT_EVENTS = `
  INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", "customerId", payload, "requestId", "occurredAt")
  SELECT "tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", "customerId", payload::jsonb, "requestId", $11::timestamp
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::uuid[], $9::text[], $10::text[])
      AS q("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", "customerId", payload, "requestId")`;

const eventBatcher = perApp((app: AppDeps) =>
  batched<Recorded, true>(
    async (items) => {
      await app.db.sql.query(INSERT_EVENTS, [
        items.map((x) => x.tenantId),
        items.map((x) => x.event.type),
        items.map((x) => x.actor.type),
        items.map((x) => x.actor.id),
        items.map((x) => x.event.subjectType),
        items.map((x) => x.event.subjectId),
        items.map((x) => x.event.licenseId ?? null),
        items.map((x) => x.event.customerId ?? null),
        items.map((x) => JSON.stringify(x.event.payload ?? {})),
        items.map((x) => x.requestId),
        new Date().toISOString(),
      ], 'tessera_record_events');
      sealTenants(app, items.map((x) => x.tenantId));
      return items.map(() => true as const);
    },
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);

/**
 * Records an event that changes nothing else (a refused activation, say): one row, written by a
 * batched statement shared with the concurrent calls instead of a transaction of its own. A burst of
 * refusals (a fleet over its cap) would otherwise queue a transaction each on the connection pool,
 * time out there and starve every other request of connections.
 */
export async function recordEvent(ctx: ServiceContext, tenantId: string, event: EventInput): Promise<void> {
  await eventBatcher(ctx.app)({ tenantId, event, actor: event.actor ?? actorOf(ctx.actor), requestId: ctx.requestId });
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
