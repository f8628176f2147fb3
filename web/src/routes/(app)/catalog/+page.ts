import { client, data } from '$lib/graphql/client';
import { ProductsDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ depends }) => {
  depends('app:products');
  return data(await client.query(ProductsDocument, {}).toPromise());
}) satisfies PageLoad;
