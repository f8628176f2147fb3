import { client, data } from '$lib/graphql/client';
import { WebhookEndpointDocument } from '$lib/graphql/generated/graphql';
import { STATUSES } from '../webhooks';
import { nodeId } from '$lib/ids';
import { notFound } from '$lib/not-found';
import type { PageLoad } from './$types';

export const load = (async ({ params, url, depends }) => {
  depends('app:webhook');
  const missing: () => never = () =>
    notFound('Webhook endpoint', 'No webhook endpoint of this workspace has this id: it may have been deleted, mistyped or cut short.', {
      href: '/settings/webhooks',
      label: 'Back to webhooks',
    });
  const id = nodeId('WebhookEndpoint', params.id);
  if (!id) missing();
  const status = STATUSES.find((s) => s === url.searchParams.get('status')) ?? null;
  const result = data(await client.query(WebhookEndpointDocument, { id, status, after: url.searchParams.get('after') }).toPromise());
  if (!result.webhookEndpoint) missing();
  return { endpoint: result.webhookEndpoint, eventTypes: result.webhookEventTypes, status };
}) satisfies PageLoad;
