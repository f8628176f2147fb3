import { client, data } from '$lib/graphql/client';
import { ApiTokensDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ depends }) => {
  depends('app:tokens');
  return data(await client.query(ApiTokensDocument, {}).toPromise());
}) satisfies PageLoad;
