import type { Client } from '@urql/core';
import type { ActivityEvent, ActivitySource } from './activity-manager.svelte';
import { data, errorMessage } from './graphql/client';
import { globalId } from './ids';
import { ActivityDocument, AuditEventsDocument, type ActivityEventRowFragment } from './graphql/generated/graphql';

function fromSubscription(e: ActivityEventRowFragment): ActivityEvent {
  return {
    id: e.id,
    type: e.type,
    occurredAt: e.occurredAt,
    actorType: e.actor.type,
    actorId: e.actor.id ?? null,
    subjectType: e.subjectType,
    subjectId: e.subjectId,
    licenseId: e.licenseId ?? null,
    customerId: e.customerId ?? null,
    payload: e.payload,
  };
}

/**
 * The feed's server side: history from the audit log (when the role may read it), then the
 * `activity` subscription resumed after the newest event seen, so nothing falls in between.
 */
export function activitySource(client: Client, opts: { history: boolean; licenseId?: string }): ActivitySource {
  let newest: string | undefined;
  return {
    async recent(limit) {
      if (!opts.history) return [];
      const d = data(await client.query(AuditEventsDocument, { first: limit, licenseId: opts.licenseId ?? null }).toPromise());
      const events = d.auditEvents.edges.flatMap((e) =>
        e.node
          ? [
              {
                ...e.node,
                actorId: e.node.actorId ?? null,
                licenseId: e.node.licenseId ? globalId('License', e.node.licenseId) : null,
                customerId: e.node.customerId ? globalId('Customer', e.node.customerId) : null,
              },
            ]
          : [],
      );
      newest ??= events[0]?.id;
      return events;
    },
    subscribe(onEvent, onError) {
      const filter = opts.licenseId ? { licenseId: opts.licenseId } : null;
      const { unsubscribe } = client.subscription(ActivityDocument, { after: newest ?? null, filter }).subscribe((result) => {
        if (result.error) onError(errorMessage(result.error));
        else if (result.data) onEvent(fromSubscription(result.data.activity));
      });
      return unsubscribe;
    },
  };
}
