import type { Actor, AppDeps } from '../../context.ts';
import { GraphQLError } from 'graphql';
import { retryReason } from '../security/availability.ts';
import { logFailure } from '../security/log.ts';
import { type DomainEvent, EventQueue } from './bus.ts';
import { toDomainEvent } from './chain.ts';

export const notFound = (what: string) => new GraphQLError(`${what} not found`, { extensions: { code: 'NOT_FOUND' } });

const REPLAY_BATCH = 500;
/** Live events a subscriber may fall behind by before it is switched to catching up from the log. */
const MAX_BACKLOG = 5_000;
/** In a subscriber's queue: "events were dropped, read from the log from your last seq". */
const RESYNC = Object.freeze({ resync: true }) as unknown as DomainEvent;

export interface ActivityFilter {
  types?: readonly string[] | null;
  /** Type prefixes, e.g. "compliance." */
  typePrefixes?: readonly string[] | null;
  licenseId?: string | null;
  customerId?: string | null;
  /**
   * When the subscriber's access began (its member or API token was created): events from before it are
   * ones it could never have received live, so a resume with `after` does not reach back past it.
   */
  since?: Date | null;
}

export function matches(e: DomainEvent, f: ActivityFilter | null | undefined): boolean {
  if (!f) return true;
  if (f.types?.length && !f.types.includes(e.type)) return false;
  if (f.typePrefixes?.length && !f.typePrefixes.some((p) => e.type.startsWith(p))) return false;
  if (f.licenseId && e.licenseId !== f.licenseId) return false;
  if (f.customerId && e.customerId !== f.customerId) return false;
  if (f.since && Date.parse(e.occurredAt) < f.since.getTime()) return false;
  return true;
}

/**
 * When the actor's access to the tenant's feeds began: its member or API token was created then, so no
 * live feed could have delivered it an earlier event. Null for the operator (the whole tenant is its own).
 */
export async function feedAccessSince(deps: AppDeps, actor: Actor): Promise<Date | null> {
  switch (actor.kind) {
    case 'user':
      return (await deps.prisma.user.findFirst({ where: { id: actor.userId, tenantId: actor.tenantId }, select: { createdAt: true } }))?.createdAt ?? new Date();
    case 'token':
      return (await deps.prisma.apiToken.findFirst({ where: { id: actor.tokenId, tenantId: actor.tenantId }, select: { createdAt: true } }))?.createdAt ?? new Date();
    default:
      return null;
  }
}

/**
 * The id of the tenant's newest sealed event, where a feed without `after` starts: a client that keeps it
 * can resume a feed after it although no event has reached it yet. Null while the tenant has none.
 */
export async function feedHead(deps: AppDeps, tenantId: string): Promise<string | null> {
  const head = await deps.prisma.auditChainHead.findUnique({ where: { tenantId }, select: { seq: true } });
  if (!head?.seq) return null;
  const e = await deps.prisma.auditEvent.findFirst({ where: { tenantId, seq: head.seq }, select: { id: true } });
  return e?.id.toString() ?? null;
}

/** What a feed's read gives when the feed was closed while it waited for the database. */
const CLOSED = Symbol('closed');
/** The longest pause between two tries of a feed's read while the database is away. */
const MAX_PAUSE_MS = 5_000;

/**
 * A live feed's database reads. One the database could not serve (unreachable, too busy) is tried again
 * after a pause, growing to MAX_PAUSE_MS, until it succeeds or the feed is closed: the feed then goes on
 * from where it was, and its client (the console) misses nothing and need not subscribe again. The first
 * failure of a run is logged. Any other error ends the feed (masked for the client and logged by yoga).
 */
class FeedReads {
  closed = false;
  private stop!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.stop = resolve));
  constructor(private readonly deps: AppDeps, private readonly feed: string) {}

  close() {
    this.closed = true;
    this.stop();
  }

  /** After a failed try `attempt` (from 0): rethrows what a retry cannot fix, else waits; false once closed. */
  async failed(err: unknown, attempt: number): Promise<boolean> {
    if (!retryReason(err)) throw err;
    if (attempt === 0) logFailure(this.deps, `${this.feed}: a read failed; retrying until the database is back`, err);
    await Promise.race([new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, MAX_PAUSE_MS)).unref()), this.stopped]);
    return !this.closed;
  }

  async run<T>(read: () => Promise<T>): Promise<T | typeof CLOSED> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        return await read();
      } catch (err) {
        if (!(await this.failed(err, attempt))) break;
      }
    }
    return CLOSED;
  }
}

/** Sealed events of the tenant with seq in (after, before), in seq order, read in keyset batches. */
async function* readSealed(deps: AppDeps, tenantId: string, after: number, before = Number.MAX_SAFE_INTEGER): AsyncGenerator<DomainEvent> {
  let from = BigInt(after);
  for (;;) {
    const rows = await deps.prisma.auditEvent.findMany({
      where: { tenantId, seq: { gt: from, lt: BigInt(before) } },
      orderBy: { seq: 'asc' },
      take: REPLAY_BATCH,
    });
    for (const r of rows) yield toDomainEvent(r);
    if (rows.length < REPLAY_BATCH) return;
    from = rows[rows.length - 1]!.seq as bigint;
  }
}

/**
 * The tenant's events in chain order, each exactly once: those after `afterId` from the audit log
 * first (or, without it, only events sealed from now on), then live ones. It listens before reading
 * the log, so nothing published meanwhile is lost; live events at or below the last delivered seq are
 * duplicates and dropped; a live event beyond the next seq means some arrived late or out of order
 * (another instance, Redis), and the hole is read from the log, where every lower seq is committed.
 */
export async function tenantEventStream(
  deps: AppDeps,
  tenantId: string,
  options: { afterId?: string | null; filter?: ActivityFilter | null; maxBacklog?: number } = {},
): Promise<AsyncIterableIterator<DomainEvent>> {
  let cursorSeq: number | null = null;
  if (options.afterId) {
    const id = /^\d{1,19}$/.test(options.afterId) ? BigInt(options.afterId) : null;
    const cursor = id === null ? null : await deps.prisma.auditEvent.findFirst({ where: { id, tenantId }, select: { seq: true } });
    // Clients only ever see sealed events: an unknown or unsealed cursor was never delivered to this tenant.
    if (!cursor || cursor.seq === null) throw notFound('event');
    cursorSeq = Number(cursor.seq);
  }
  const queue = new EventQueue<DomainEvent>({ limit: options.maxBacklog ?? MAX_BACKLOG, marker: RESYNC });
  // Events the bus may have lost on the way (Redis was away) are read from the log, as after an overflow.
  const live = deps.bus.listen(tenantId, (e) => queue.push(e), () => queue.push(RESYNC));
  const reads = new FeedReads(deps, 'activity feed');
  let last = 0;

  /** The log's events after `last` (and before `before`); false when the feed was closed meanwhile. */
  async function* catchUp(before?: number): AsyncGenerator<DomainEvent, boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        for await (const e of readSealed(deps, tenantId, last, before)) {
          last = e.seq;
          if (matches(e, options.filter)) yield e;
        }
        return true;
      } catch (err) {
        if (!(await reads.failed(err, attempt))) return false;
      }
    }
  }

  async function* run(): AsyncGenerator<DomainEvent> {
    if (cursorSeq !== null) last = cursorSeq;
    else {
      const head = await reads.run(() => deps.prisma.auditChainHead.findUnique({ where: { tenantId }, select: { seq: true } }));
      if (head === CLOSED) return;
      last = Number(head?.seq ?? 0);
    }
    if (!(yield* catchUp())) return;
    for (;;) {
      const next = await queue.next();
      if (next.done) return;
      const e = next.value;
      if (e === RESYNC) {
        if (!(yield* catchUp())) return;
        continue;
      }
      if (e.seq <= last) continue;
      if (e.seq > last + 1 && !(yield* catchUp(e.seq))) return;
      last = e.seq;
      if (matches(e, options.filter)) yield e;
    }
  }

  return guard(run(), () => {
    live();
    queue.close();
    reads.close();
  });
}

/**
 * Wraps a generator so that return() (the client unsubscribed) releases the source at once, even when
 * the generator is parked on an await rather than a yield.
 */
export function guard<T>(gen: AsyncGenerator<T>, release: () => void): AsyncIterableIterator<T> {
  let released = false;
  const once = () => {
    if (released) return;
    released = true;
    release();
  };
  return {
    async next() {
      try {
        const r = await gen.next();
        if (r.done) once();
        return r;
      } catch (err) {
        once();
        throw err;
      }
    },
    async return() {
      once();
      // The pending next() now resolves done (the queue is closed), after which return() can run.
      void gen.return(undefined);
      return { value: undefined, done: true };
    },
    async throw(err) {
      once();
      void gen.return(undefined);
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

export interface LicenseLiveState {
  licenseId: string;
  activationsUsed: number;
  maxActivations: number | null;
  seats: number | null;
  /** Active, unexpired seat leases. */
  seatsInUse: number;
  state: string;
  revision: number;
  /** The event that triggered this state; null for the state sent on subscribe. */
  eventId: string | null;
  eventType: string | null;
  /** When the event happened; null for the state sent on subscribe. */
  eventOccurredAt: string | null;
  /** For a `device.heartbeat`: the device as it is after it, so a page can show it without reading the license again. */
  device: LiveDevice | null;
}

/** A device (activation) of the license, its fields a heartbeat changes. */
export interface LiveDevice {
  id: string;
  hostname: string | null;
  platform: string | null;
  osVersion: string | null;
  appVersion: string | null;
  lastHeartbeatAt: Date | null;
}

/** The license's counters now and after every event about it. */
export async function licenseLiveStream(deps: AppDeps, tenantId: string, licenseId: string): Promise<AsyncIterableIterator<LicenseLiveState>> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(licenseId);
  const exists = isUuid && (await deps.prisma.license.count({ where: { id: licenseId, tenantId } })) > 0;
  if (!exists) throw notFound('license');
  const queue = new EventQueue<DomainEvent>({ limit: MAX_BACKLOG, marker: RESYNC });
  const live = deps.bus.listen(
    tenantId,
    (e) => {
      if (e.licenseId === licenseId) queue.push(e);
    },
    // Events the bus may have lost on the way: the counters are read again.
    () => queue.push(RESYNC),
  );
  const read = async (event: DomainEvent | null): Promise<LicenseLiveState> => {
    const l = await deps.prisma.license.findFirst({
      where: { id: licenseId, tenantId },
      select: { id: true, activationsUsed: true, maxActivations: true, seats: true, state: true, revision: true },
    });
    if (!l) throw notFound('license');
    const seatsInUse = l.seats === null ? 0 : await deps.prisma.lease.count({ where: { licenseId, status: 'ACTIVE', expiresAt: { gt: new Date() } } });
    // A heartbeat changes one device only: it comes with the event, by its primary key.
    const device =
      event?.type === 'device.heartbeat' && event.subjectType === 'Activation'
        ? await deps.prisma.activation.findFirst({
            where: { id: event.subjectId, licenseId },
            select: { id: true, hostname: true, platform: true, osVersion: true, appVersion: true, lastHeartbeatAt: true },
          })
        : null;
    return {
      device,
      eventOccurredAt: event?.occurredAt ?? null,
      seatsInUse,
      licenseId: l.id,
      activationsUsed: l.activationsUsed,
      maxActivations: l.maxActivations,
      seats: l.seats,
      state: l.state,
      revision: l.revision,
      eventId: event?.id ?? null,
      eventType: event?.type ?? null,
    };
  };
  const reads = new FeedReads(deps, 'license feed');
  async function* run(): AsyncGenerator<LicenseLiveState> {
    for (let event: DomainEvent | null = null; ; ) {
      // Read again until the database answers: the counters are read whole, so a later read shows them as they are.
      const state = await reads.run(() => read(event));
      if (state === CLOSED) return;
      yield state;
      const next = await queue.next();
      if (next.done) return;
      event = next.value === RESYNC ? null : next.value;
    }
  }
  return guard(run(), () => {
    live();
    queue.close();
    reads.close();
  });
}
