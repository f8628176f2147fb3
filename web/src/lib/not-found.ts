import { error } from '@sveltejs/kit';

/**
 * Ends a detail page's load with a 404 that says what was not found and where its list is: an id that
 * names nothing of this workspace (unknown, deleted, malformed or another type's) is no failure to retry.
 */
export function notFound(what: string, message: string, back: { href: string; label: string }): never {
  error(404, { message, missing: { what, back } });
}

export function productNotFound(): never {
  notFound('Product', 'No product of this workspace has this id: it may have been deleted, mistyped or cut short.', { href: '/catalog', label: 'Back to the catalog' });
}
