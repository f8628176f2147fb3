import { error } from '@sveltejs/kit';
import { client, data } from '$lib/graphql/client';
import { WebhookEndpointDocument } from '$lib/graphql/generated/graphql';
import { STATUSES } from '../webhooks';
import type { PageLoad } from './$types';

export const load = (async ({ params, url, depends }) => {
  depends('app:webhook');
  const status = STATUSES.find((s) => s === url.searchParams.get('status')) ?? null;
  const result = data(await client.query(WebhookEndpointDocument, { id: params.id, status, after: url.searchParams.get('after') }).toPromise());
  if (!result.webhookEndpoint) error(404, 'This webhook endpoint does not exist, or belongs to another tenant.');
  return { endpoint: result.webhookEndpoint, eventTypes: result.webhookEventTypes, status };
}) satisfies PageLoad;
