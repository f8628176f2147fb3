import { createPubSub } from 'graphql-yoga';

/** What subscribers receive: ids and a small payload; resolvers re-fetch anything else. */
export interface DomainEvent {
  id: string;
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
  subscribe(tenantId: string): AsyncIterable<DomainEvent>;
}

/** In-process bus; events are routed by tenant id so a subscriber only ever sees its own tenant. */
export function createMemoryBus(): EventBus {
  const pubsub = createPubSub<{ 'tenant-events': [tenantId: string, event: DomainEvent] }>();
  return {
    publish(events) {
      for (const e of events) pubsub.publish('tenant-events', e.tenantId, e);
    },
    subscribe(tenantId) {
      return pubsub.subscribe('tenant-events', tenantId);
    },
  };
}
