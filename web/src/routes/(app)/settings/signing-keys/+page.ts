import { client, data } from '$lib/graphql/client';
import { SigningKeysDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ depends }) => {
  depends('app:signing-keys');
  return data(await client.query(SigningKeysDocument, {}).toPromise());
}) satisfies PageLoad;
