import { client, data } from '$lib/graphql/client';
import { withCustomer } from '$lib/customers';
import { LicenseFiltersDocument, LicensesDocument, type LicenseStatus } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

const PAGE_SIZE = 25;
const STATUSES: LicenseStatus[] = ['ACTIVE', 'EXPIRED', 'SUSPENDED', 'REVOKED'];

export const load = (async ({ url, depends }) => {
  depends('app:licenses');
  const p = url.searchParams;
  const status = STATUSES.find((s) => s === p.get('status')) ?? null;
  const expiring = Number(p.get('expiring')) || null;
  const filters = {
    search: p.get('q')?.trim() || null,
    status,
    productId: p.get('product') || null,
    customerId: p.get('customer') || null,
    expiringWithinDays: expiring,
  };
  const before = p.get('before');
  const after = p.get('after');
  const page = before ? { last: PAGE_SIZE, before } : { first: PAGE_SIZE, after };
  const [licenses, options] = await Promise.all([
    client.query(LicensesDocument, { ...filters, ...page }).toPromise().then(data),
    client.query(LicenseFiltersDocument, {}).toPromise().then(data),
  ]);
  const customers = await withCustomer(
    options.customers.edges.flatMap((e) => (e.node ? [e.node] : [])),
    filters.customerId,
  );
  return { licenses: licenses.licenses, options, customers, filters, paged: Boolean(before || after) };
}) satisfies PageLoad;
