import { error } from '@sveltejs/kit';
import { client, data } from '$lib/graphql/client';
import { CustomerDocument, LicensesDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ params }) => {
  const [customer, licenses] = await Promise.all([
    client.query(CustomerDocument, { id: params.id }).toPromise().then(data),
    client.query(LicensesDocument, { customerId: params.id, first: 100 }).toPromise().then(data),
  ]);
  if (customer.node?.__typename !== 'Customer') error(404, 'This customer does not exist, or belongs to another tenant.');
  return { customer: customer.node, licenses: licenses.licenses };
}) satisfies PageLoad;
