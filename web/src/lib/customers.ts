import { client, data } from './graphql/client';
import { CustomerDocument } from './graphql/generated/graphql';

export interface CustomerOption {
  id: string;
  name: string;
  email?: string | null;
}

/**
 * The customer drop-downs list the first customers by name; a customer chosen elsewhere (a link from
 * its page, a filter in the URL, a license's current holder) may sort past them. This adds it, so the
 * form shows it selected and submits it, instead of showing another choice.
 */
export async function withCustomer<T extends CustomerOption>(options: T[], id: string | null | undefined): Promise<(T | CustomerOption)[]> {
  if (!id || options.some((c) => c.id === id)) return options;
  const node = data(await client.query(CustomerDocument, { id }).toPromise()).node;
  return node?.__typename === 'Customer' ? [...options, { id: node.id, name: node.name, email: node.email ?? null }] : options;
}
