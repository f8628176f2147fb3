import { error } from '@sveltejs/kit';
import { client, data } from '$lib/graphql/client';
import { ProductDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ params }) => {
  const { node } = data(await client.query(ProductDocument, { id: params.productId }).toPromise());
  if (node?.__typename !== 'Product') error(404, 'This product does not exist, or belongs to another tenant.');
  const edition = node.editions.find((e) => e.id === params.editionId);
  if (!edition) error(404, 'This edition does not exist, or belongs to another product.');
  return { product: node, edition };
}) satisfies PageLoad;
