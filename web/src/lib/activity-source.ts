import type { Client } from '@urql/core';
import type { ActivityEvent, ActivitySource } from './activity-manager.svelte';
import { data, errorMessage } from './graphql/client';
import { globalId, rawId } from './ids';
import { ActivityCursorDocument, ActivityDocument, AuditEventsDocument, ComplianceAlertsDocument, EventTypesDocument, type ActivityEventRowFragment, type AuditEventsQuery } from './graphql/generated/graphql';

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

/** A page of the audit log as feed events, with the global ids the subscriptions give. */
function fromHistory(d: AuditEventsQuery): ActivityEvent[] {
  return d.auditEvents.edges.flatMap((e) =>
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
}

/**
 * Where a feed starts for a role that may not read the history (below SUPPORT): the tenant's newest
 * event, so that a resume after a socket lost before any event arrived still misses nothing.
 */
async function feedStart(client: Client): Promise<string | undefined> {
  const d = data(await client.query(ActivityCursorDocument, {}, { requestPolicy: 'network-only' }).toPromise());
  return d.activityCursor ?? undefined;
}

/**
 * The feed's server side: history from the audit log (when the role may read it), then the
 * `activity` subscription resumed after the newest event seen, so nothing falls in between, also
 * when it is started again after the socket was lost. Every role resumes with `after` (the server
 * gives each what its live feed would have); below SUPPORT the feed starts after `activityCursor`.
 */
export function activitySource(client: Client, opts: { history: boolean; licenseId?: string }): ActivitySource {
  let newest: string | undefined;
  return {
    history: opts.history,
    async recent(limit) {
      if (!opts.history) {
        newest ??= await feedStart(client);
        return [];
      }
      const d = data(await client.query(AuditEventsDocument, { first: limit, licenseId: opts.licenseId ? rawId(opts.licenseId) : null }).toPromise());
      const events = fromHistory(d);
      newest ??= events[0]?.id;
      return events;
    },
    subscribe(onEvent, onError) {
      const filter = opts.licenseId ? { licenseId: opts.licenseId } : null;
      const { unsubscribe } = client.subscription(ActivityDocument, { after: newest ?? null, filter }).subscribe((result) => {
        if (result.error) onError(errorMessage(result.error));
        else if (result.data) {
          newest = result.data.activity.id;
          onEvent(fromSubscription(result.data.activity));
        }
      });
      return unsubscribe;
    },
  };
}

/**
 * A kind of the compliance feed: every compliance.* event, the alerts and the changes of their settings
 * and thresholds alike, as the `complianceAlerts` subscription gives them live; the history lists each.
 */
export const isComplianceEvent = (type: string) => type.startsWith('compliance.');

/** Compliance alerts: their history from the audit log, then the `complianceAlerts` subscription. */
export function complianceSource(client: Client, opts: { history: boolean }): ActivitySource {
  let newest: string | undefined;
  // The kinds come from the server's list of event types, so a new kind of alert is not left out here;
  // asked once for the page's life (a failed ask is asked again at the next poll).
  let kinds: Promise<string[]> | undefined;
  const complianceKinds = () =>
    (kinds ??= client
      .query(EventTypesDocument, {})
      .toPromise()
      .then((r) => data(r).webhookEventTypes.filter(isComplianceEvent))
      .catch((e: unknown) => {
        kinds = undefined;
        throw e;
      }));
  return {
    history: opts.history,
    async recent(limit) {
      if (!opts.history) {
        newest ??= await feedStart(client);
        return [];
      }
      const types = await complianceKinds();
      if (types.length === 0) return [];
      // Every kind in one request: the server merges them, newest first.
      const d = data(await client.query(AuditEventsDocument, { first: limit, types }).toPromise());
      const events = fromHistory(d);
      newest ??= events[0]?.id;
      return events;
    },
    subscribe(onEvent, onError) {
      const { unsubscribe } = client.subscription(ComplianceAlertsDocument, { after: newest ?? null }).subscribe((result) => {
        if (result.error) onError(errorMessage(result.error));
        else if (result.data) {
          newest = result.data.complianceAlerts.id;
          onEvent(fromSubscription(result.data.complianceAlerts));
        }
      });
      return unsubscribe;
    },
  };
}
