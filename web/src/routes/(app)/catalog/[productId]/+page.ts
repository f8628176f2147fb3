import { client, data } from '$lib/graphql/client';
import { ProductDocument } from '$lib/graphql/generated/graphql';
import { nodeId } from '$lib/ids';
import { productNotFound } from '$lib/not-found';
import type { PageLoad } from './$types';

export const load = (async ({ params, depends }) => {
  depends('app:product');
  const id = nodeId('Product', params.productId);
  if (!id) productNotFound();
  const { node, issued } = data(await client.query(ProductDocument, { id }).toPromise());
  if (node?.__typename !== 'Product') productNotFound();
  return { product: node, issued: issued.totalCount };
}) satisfies PageLoad;
