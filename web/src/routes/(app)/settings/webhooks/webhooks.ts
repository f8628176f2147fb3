import type { WebhookDeliveryStatus } from '$lib/graphql/generated/graphql';
import type { Failure } from '$lib/graphql/payload';

export const STATUSES: WebhookDeliveryStatus[] = ['PENDING', 'SUCCEEDED', 'FAILED'];

/** The server's rule: an empty list, or one with "*", subscribes to every event. */
export function everyEvent(types: readonly string[]): boolean {
  return types.length === 0 || types.includes('*');
}

export function urlProblem(v: string): string | null {
  if (v.length > 2048) return 'must be at most 2048 characters';
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:' ? null : 'must be an https:// URL';
  } catch {
    return 'is not a URL';
  }
}

/** The server names list items ("eventTypes.2"); the form has one field for the list. */
export function onListField(failure: Failure): Failure {
  const fields: Record<string, string> = {};
  for (const [path, message] of Object.entries(failure.fields)) {
    const key = path.startsWith('eventTypes') ? 'eventTypes' : path;
    fields[key] = fields[key] ? `${fields[key]}; ${message}` : message;
  }
  return { ...failure, fields };
}

export function typesLabel(types: readonly string[]): string {
  return everyEvent(types) ? 'All events' : types.join(', ');
}

/** Why an endpoint is disabled, in a sentence; null while it is enabled. */
export function disabledNote(e: { enabled: boolean; disabledReason?: string | null; disabledAt?: string | null; consecutiveFailures: number }, when: (iso: string) => string): string | null {
  if (e.enabled) return null;
  if (e.disabledReason === 'DELIVERY_FAILURES') {
    // 0: its URL changed since, which starts the count again (the failures were the old address's).
    const failures =
      e.consecutiveFailures === 0
        ? 'failed deliveries to its previous URL'
        : `${e.consecutiveFailures} failed ${e.consecutiveFailures === 1 ? 'delivery' : 'deliveries'}`;
    return `Disabled automatically after ${failures}${e.disabledAt ? ` on ${when(e.disabledAt)}` : ''}`;
  }
  return e.disabledAt ? `Disabled on ${when(e.disabledAt)}` : 'Disabled';
}
