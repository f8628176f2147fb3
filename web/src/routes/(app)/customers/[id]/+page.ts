import { error } from '@sveltejs/kit';
import { client, data } from '$lib/graphql/client';
import { CustomerDocument, LicensesDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

const PAGE_SIZE = 50;

export const load = (async ({ params, url, depends }) => {
  depends('app:customer');
  const before = url.searchParams.get('before');
  const after = url.searchParams.get('after');
  const page = before ? { last: PAGE_SIZE, before } : { first: PAGE_SIZE, after };
  const [customer, licenses, active] = await Promise.all([
    client.query(CustomerDocument, { id: params.id }).toPromise().then(data),
    client.query(LicensesDocument, { customerId: params.id, ...page }).toPromise().then(data),
    // All of the customer's active licenses, not just this page's.
    client.query(LicensesDocument, { customerId: params.id, status: 'ACTIVE', first: 1 }).toPromise().then(data),
  ]);
  if (customer.node?.__typename !== 'Customer') error(404, 'This customer does not exist, or belongs to another tenant.');
  return { customer: customer.node, licenses: licenses.licenses, active: active.licenses.totalCount, paged: Boolean(before || after) };
}) satisfies PageLoad;
