import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';

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
  publish(events: DomainEvent[]): void;
  /** Registers `listener` for one tenant's events at once (before any await); returns the remover. */
  listen(tenantId: string, listener: (event: DomainEvent) => void): () => void;
  /** Live events of one tenant, as an iterator that stops listening when returned. */
  subscribe(tenantId: string): AsyncIterableIterator<DomainEvent>;
  close(): Promise<void>;
}

interface Target {
  addEventListener(type: string, callback: (event: CustomEvent<DomainEvent>) => void): void;
  removeEventListener(type: string, callback: (event: CustomEvent<DomainEvent>) => void): void;
  dispatchEvent(event: CustomEvent<DomainEvent>): boolean;
}

/**
 * Events are routed by tenant id (one topic per tenant), so a listener only ever sees its own tenant.
 * The prefix separates deployments (and test runs) sharing one Redis.
 */
function busOver(target: Target, prefix: string, close: () => Promise<void>): EventBus {
  const topic = (tenantId: string) => `${prefix}:tenant-events:${tenantId}`;
  return {
    publish(events) {
      for (const e of events) target.dispatchEvent(new CustomEvent(topic(e.tenantId), { detail: e }));
    },
    listen(tenantId, listener) {
      const callback = (event: CustomEvent<DomainEvent>) => listener(event.detail);
      target.addEventListener(topic(tenantId), callback);
      return () => target.removeEventListener(topic(tenantId), callback);
    },
    subscribe(tenantId) {
      const queue = new EventQueue<DomainEvent>();
      const stop = this.listen(tenantId, (e) => queue.push(e));
      return queue.iterator(stop);
    },
    close,
  };
}

/** In-process bus, for one instance. */
export function createMemoryBus(prefix = 'tessera'): EventBus {
  const topics = new Map<string, Set<(event: CustomEvent<DomainEvent>) => void>>();
  const target: Target = {
    addEventListener(type, callback) {
      let set = topics.get(type);
      if (!set) topics.set(type, (set = new Set()));
      set.add(callback);
    },
    removeEventListener(type, callback) {
      const set = topics.get(type);
      set?.delete(callback);
      if (set?.size === 0) topics.delete(type);
    },
    dispatchEvent(event) {
      for (const callback of [...(topics.get(event.type) ?? [])]) callback(event);
      return true;
    },
  };
  return busOver(target, prefix, async () => {});
}

/** Cross-instance bus through Redis pub/sub: an event published on one instance reaches every instance. */
export function createRedisBus(options: { url: string; prefix?: string }): EventBus {
  const publishClient = new Redis(options.url, { lazyConnect: false, maxRetriesPerRequest: 3 });
  const subscribeClient = new Redis(options.url, { lazyConnect: false });
  for (const c of [publishClient, subscribeClient]) c.on('error', (err) => console.error('redis:', err.message));
  const target = createRedisEventTarget<CustomEvent<DomainEvent>>({ publishClient, subscribeClient }) as unknown as Target;
  return busOver(target, options.prefix ?? 'tessera', async () => {
    await Promise.allSettled([publishClient.quit(), subscribeClient.quit()]);
  });
}

/** The bus a configuration asks for: Redis when REDIS_URL is set, in-memory otherwise. */
export function createBus(redisUrl: string | undefined, prefix?: string): EventBus {
  return redisUrl ? createRedisBus({ url: redisUrl, prefix }) : createMemoryBus(prefix);
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
