import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * What subscribers receive: ids and a small payload; resolvers re-fetch anything else. Events are
 * published once sealed into the tenant's audit chain, so `seq` orders them per tenant without gaps.
 */
export interface DomainEvent {
  id: string;
  /** Position in the tenant's audit chain: 1, 2, 3... */
  seq: number;
  tenantId: string;
  type: string;
  occurredAt: string;
  actorType: string;
  actorId: string | null;
  subjectType: string;
  subjectId: string;
  licenseId: string | null;
  customerId: string | null;
  payload: unknown;
  requestId: string | null;
}

export interface EventBus {
  /** Delivers to this instance's listeners at once, and to the other instances' (through Redis, if any). */
  publish(events: DomainEvent[]): void;
  /**
   * Registers `listener` for one tenant's events at once (before any await); returns the remover.
   * `missed`, when given, is called when some of the tenant's events may not have reached this instance
   * (Redis was unreachable from here or from the instance that raised them): read them from the audit log.
   */
  listen(tenantId: string, listener: (event: DomainEvent) => void, missed?: () => void): () => void;
  /** Live events of one tenant, as an iterator that stops listening when returned. */
  subscribe(tenantId: string): AsyncIterableIterator<DomainEvent>;
  /** For /health: whether events reach the other instances (always, in memory: there are none). */
  state(): BusState;
  /**
   * Resolves true once events published here reach the other instances (at once in memory), false if
   * that is not so within `timeoutMs`. For a short-lived publisher (the operator CLI): a Redis bus still
   * connecting drops what is published meanwhile.
   */
  ready(timeoutMs: number): Promise<boolean>;
  /** Waits for the publishes still on their way to Redis (sent, or failed), then closes. */
  close(): Promise<void>;
}

export interface BusState {
  transport: 'memory' | 'redis';
  connected: boolean;
  /** Since when Redis has been unreachable (ISO time), while it is. */
  unreachableSince?: string;
}

interface Listener {
  event: (event: DomainEvent) => void;
  missed?: () => void;
}

/** This instance's listeners, by tenant. */
class Listeners {
  private readonly byTenant = new Map<string, Set<Listener>>();

  /** Returns whether this is the tenant's first listener. */
  add(tenantId: string, l: Listener): boolean {
    let set = this.byTenant.get(tenantId);
    const first = !set;
    if (!set) this.byTenant.set(tenantId, (set = new Set()));
    set.add(l);
    return first;
  }

  /** Returns whether that was the tenant's last listener. */
  remove(tenantId: string, l: Listener): boolean {
    const set = this.byTenant.get(tenantId);
    if (!set?.delete(l) || set.size) return false;
    this.byTenant.delete(tenantId);
    return true;
  }

  tenants(): string[] {
    return [...this.byTenant.keys()];
  }

  deliver(e: DomainEvent) {
    for (const l of [...(this.byTenant.get(e.tenantId) ?? [])]) l.event(e);
  }

  missed(tenantId: string) {
    for (const l of [...(this.byTenant.get(tenantId) ?? [])]) l.missed?.();
  }
}

function subscribeOf(bus: Pick<EventBus, 'listen'>) {
  return (tenantId: string) => {
    const queue = new EventQueue<DomainEvent>();
    const stop = bus.listen(tenantId, (e) => queue.push(e));
    return queue.iterator(stop);
  };
}

/** How long a Redis connection may take from TCP connect to answering, before it counts as unreachable. */
const READY_TIMEOUT_MS = 5_000;

/** In-process bus, for one instance. */
export function createMemoryBus(): EventBus {
  const listeners = new Listeners();
  const bus: EventBus = {
    publish(events) {
      for (const e of events) listeners.deliver(e);
    },
    listen(tenantId, event, missed) {
      const l = { event, missed };
      listeners.add(tenantId, l);
      return () => void listeners.remove(tenantId, l);
    },
    subscribe: (tenantId) => subscribeOf(bus)(tenantId),
    state: () => ({ transport: 'memory', connected: true }),
    ready: async () => true,
    close: async () => {},
  };
  return bus;
}

/**
 * Cross-instance bus through Redis pub/sub, one channel per tenant (a listener only ever sees its own
 * tenant; the prefix separates deployments and test runs sharing one Redis).
 *
 * An event reaches this instance's listeners directly and the other instances' through Redis (each
 * instance skips its own events there). While Redis is unreachable nothing is queued: each instance's
 * listeners still get that instance's events, the others' are lost on the way, and the bus logs the
 * outage once (and its end). Nothing stays lost for good, as every event is in the audit log: once Redis
 * is back, an instance that could not publish some tenants' events says so on a channel of its own, and
 * an instance whose subscription was cut tells all its listeners; either way `missed` tells the live
 * feeds to read the log from where they are.
 */
export function createRedisBus(options: { url: string; prefix?: string; logger?: Logger }): EventBus {
  const prefix = options.prefix ?? 'tessera';
  const origin = randomUUID();
  const topic = (tenantId: string) => `${prefix}:tenant-events:${tenantId}`;
  const tenantOf = (channel: string) => channel.slice(`${prefix}:tenant-events:`.length);
  /** `{ origin, tenants }`: that instance could not publish some events of these tenants. */
  const missedChannel = `${prefix}:tenant-events-missed`;
  const where = (() => {
    const u = new URL(options.url);
    return `${u.hostname}:${u.port || 6379}`;
  })();
  const listeners = new Listeners();
  // No offline queue: a command while Redis is away fails at once instead of piling up (and failing later).
  // A publish that hangs on a connection gone silent is given up after 2 s (counted as not published).
  const publisher = new Redis(options.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 });
  const subscriber = new Redis(options.url, { enableOfflineQueue: false, autoResubscribe: false });
  /** Tenants some of whose events this instance could not publish, to announce once Redis is back. */
  const unpublished = new Set<string>();
  /** Publishes sent and not answered yet: close() waits for them. */
  const sending = new Set<Promise<unknown>>();
  let subscribed = false;
  let closed = false;
  let unreachableSince: Date | undefined;

  const down = (err: unknown) => {
    subscribed &&= subscriber.status === 'ready';
    if (closed || unreachableSince) return;
    unreachableSince = new Date();
    options.logger?.warn(
      { redis: where, error: (err as Error)?.message ?? String(err) },
      'event bus: Redis is unreachable; other instances\' events do not reach this one (and its own do not reach them) until it is back, then live feeds catch up from the audit log',
    );
  };
  const upIfReady = () => {
    if (closed || !unreachableSince || publisher.status !== 'ready' || !subscribed) return;
    options.logger?.info({ redis: where, unreachableSince: unreachableSince.toISOString() }, 'event bus: Redis is reachable again');
    unreachableSince = undefined;
  };

  let retry: NodeJS.Timeout | undefined;
  /** A publish failed: on a lost connection the next 'ready' announces it; on a live one, a moment later. */
  const publishFailed = (err: unknown) => {
    if (publisher.status !== 'ready') return down(err);
    retry ??= setTimeout(() => {
      retry = undefined;
      announceUnpublished();
    }, 1_000).unref();
  };
  const announceUnpublished = () => {
    if (closed || !unpublished.size || publisher.status !== 'ready') return;
    const tenants = [...unpublished];
    publisher.publish(missedChannel, JSON.stringify({ origin, tenants })).then(() => {
      for (const t of tenants) unpublished.delete(t);
    }, publishFailed);
  };

  // A Redis that accepts the connection and never answers never gets 'ready' and raises no error by itself.
  for (const client of [publisher, subscriber]) {
    let timer: NodeJS.Timeout | undefined;
    client.on('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (client.status === 'ready' || closed) return;
        down(new Error(`no answer within ${READY_TIMEOUT_MS / 1000} s of connecting`));
        client.disconnect(true);
      }, READY_TIMEOUT_MS).unref();
    });
    client.on('ready', () => clearTimeout(timer));
    client.on('end', () => clearTimeout(timer));
  }
  publisher.on('error', down);
  subscriber.on('error', down);
  publisher.on('close', () => down(new Error('connection closed')));
  subscriber.on('close', () => down(new Error('connection closed')));
  publisher.on('ready', () => {
    announceUnpublished();
    upIfReady();
  });
  // (Re)subscribes to every channel this instance listens on; its listeners may have missed events meanwhile.
  subscriber.on('ready', () => {
    const tenants = listeners.tenants();
    subscriber.subscribe(missedChannel, ...tenants.map(topic)).then(
      () => {
        subscribed = true;
        // Tenants first listened to while this subscription was on its way.
        const later = listeners.tenants().filter((t) => !tenants.includes(t));
        if (later.length) subscriber.subscribe(...later.map(topic)).catch(down);
        upIfReady();
        for (const t of listeners.tenants()) listeners.missed(t);
      },
      (err: unknown) => down(err),
    );
  });
  subscriber.on('message', (channel: string, message: string) => {
    let parsed: { origin?: string; tenants?: string[] } & Partial<DomainEvent>;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (parsed.origin === origin) return;
    if (channel === missedChannel) {
      for (const t of parsed.tenants ?? []) listeners.missed(t);
      return;
    }
    const { origin: _, tenants: __, ...event } = parsed;
    if (event.tenantId === tenantOf(channel)) listeners.deliver(event as DomainEvent);
  });

  const bus: EventBus = {
    publish(events) {
      for (const e of events) {
        listeners.deliver(e);
        if (publisher.status !== 'ready') {
          unpublished.add(e.tenantId);
          continue;
        }
        const sent = publisher.publish(topic(e.tenantId), JSON.stringify({ ...e, origin })).catch((err: unknown) => {
          unpublished.add(e.tenantId);
          publishFailed(err);
        });
        sending.add(sent);
        void sent.finally(() => sending.delete(sent));
      }
    },
    listen(tenantId, event, missed) {
      const l = { event, missed };
      // Later subscriptions go with the next (re)connection's; a failure here is that connection's failure.
      if (listeners.add(tenantId, l) && subscribed) subscriber.subscribe(topic(tenantId)).catch(down);
      return () => {
        if (listeners.remove(tenantId, l) && subscribed) subscriber.unsubscribe(topic(tenantId)).catch(down);
      };
    },
    subscribe: (tenantId) => subscribeOf(bus)(tenantId),
    state: () => ({
      transport: 'redis',
      connected: publisher.status === 'ready' && subscribed,
      ...(unreachableSince ? { unreachableSince: unreachableSince.toISOString() } : {}),
    }),
    async ready(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!(publisher.status === 'ready' && subscribed)) {
        if (closed || Date.now() >= deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return true;
    },
    async close() {
      await Promise.allSettled([...sending]);
      closed = true;
      clearTimeout(retry);
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
  return bus;
}

/** The bus a configuration asks for: Redis when REDIS_URL is set, in-memory otherwise. */
export function createBus(redisUrl: string | undefined, prefix?: string, logger?: Logger): EventBus {
  return redisUrl ? createRedisBus({ url: redisUrl, prefix, logger }) : createMemoryBus();
}

/**
 * An unbounded FIFO between a push-based source and an async iterator. Returning the iterator ends a
 * pending next() at once, so an idle subscription is released when its client goes away.
 */
export class EventQueue<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private closed = false;

  /**
   * With `overflow`, a consumer that falls `limit` items behind (a slow client) loses the queued items
   * and gets `overflow` in their place once; it then catches up from the audit log instead of holding
   * an unbounded backlog in memory.
   */
  constructor(private readonly overflow?: { limit: number; marker: T }) {}

  push(item: T) {
    if (this.closed) return;
    if (this.overflow && this.items.length >= this.overflow.limit) {
      this.items = [this.overflow.marker];
      return;
    }
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length) return Promise.resolve({ value: this.items.shift() as T, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close() {
    this.closed = true;
    this.items = [];
    const w = this.waiting;
    this.waiting = null;
    w?.({ value: undefined, done: true });
  }

  iterator(onClose: () => void): AsyncIterableIterator<T> {
    const end = async (): Promise<IteratorResult<T>> => {
      onClose();
      this.close();
      return { value: undefined, done: true };
    };
    return {
      next: () => this.next(),
      return: end,
      throw: async (err) => {
        await end();
        throw err;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}
