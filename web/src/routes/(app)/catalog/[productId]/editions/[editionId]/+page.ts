import { client, data } from '$lib/graphql/client';
import { ProductDocument } from '$lib/graphql/generated/graphql';
import { nodeId } from '$lib/ids';
import { notFound, productNotFound } from '$lib/not-found';
import type { PageLoad } from './$types';

export const load = (async ({ params }) => {
  const id = nodeId('Product', params.productId);
  if (!id) productNotFound();
  const { node } = data(await client.query(ProductDocument, { id }).toPromise());
  if (node?.__typename !== 'Product') productNotFound();
  const editionId = nodeId('Edition', params.editionId);
  const edition = node.editions.find((e) => e.id === editionId);
  if (!edition) {
    notFound('Edition', `${node.name} has no edition with this id: it may have been deleted, mistyped or cut short.`, {
      href: `/catalog/${encodeURIComponent(node.id)}`,
      label: `Back to ${node.name}`,
    });
  }
  return { product: node, edition };
}) satisfies PageLoad;
