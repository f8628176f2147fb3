import { client, data } from '$lib/graphql/client';
import { MembersDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ depends }) => {
  depends('app:members');
  return data(await client.query(MembersDocument, {}).toPromise());
}) satisfies PageLoad;
