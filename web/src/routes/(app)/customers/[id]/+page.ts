import { client, data } from '$lib/graphql/client';
import { CustomerDocument, LicensesDocument } from '$lib/graphql/generated/graphql';
import { nodeId } from '$lib/ids';
import { notFound } from '$lib/not-found';
import type { PageLoad } from './$types';

const PAGE_SIZE = 50;

export const load = (async ({ params, url, depends }) => {
  depends('app:customer');
  const missing: () => never = () => notFound('Customer', 'No customer of this workspace has this id: it may have been deleted, mistyped or cut short.', { href: '/customers', label: 'Back to customers' });
  const id = nodeId('Customer', params.id);
  if (!id) missing();
  const before = url.searchParams.get('before');
  const after = url.searchParams.get('after');
  const page = before ? { last: PAGE_SIZE, before } : { first: PAGE_SIZE, after };
  const [customer, licenses, active] = await Promise.all([
    client.query(CustomerDocument, { id }).toPromise().then(data),
    client.query(LicensesDocument, { customerId: id, ...page }).toPromise().then(data),
    // All of the customer's active licenses, not just this page's.
    client.query(LicensesDocument, { customerId: id, status: 'ACTIVE', first: 1 }).toPromise().then(data),
  ]);
  if (customer.node?.__typename !== 'Customer') missing();
  return { customer: customer.node, licenses: licenses.licenses, active: active.licenses.totalCount, paged: Boolean(before || after) };
}) satisfies PageLoad;
