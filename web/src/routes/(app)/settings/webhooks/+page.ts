import { client, data } from '$lib/graphql/client';
import { WebhookEndpointsDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ depends }) => {
  depends('app:webhooks');
  return data(await client.query(WebhookEndpointsDocument, {}).toPromise());
}) satisfies PageLoad;
