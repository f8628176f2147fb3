const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Relay global id of a raw database id (the audit log stores raw ids); global ids pass through. */
export function globalId(typename: string, id: string): string {
  return UUID.test(id) ? btoa(`${typename}:${id}`) : id;
}

/** The database id inside a Relay global id (the audit log filters by raw ids). */
export function rawId(id: string): string {
  if (UUID.test(id)) return id;
  try {
    const decoded = atob(id);
    const colon = decoded.indexOf(':');
    return colon > 0 ? decoded.slice(colon + 1) : id;
  } catch {
    return id;
  }
}

/**
 * The global id a detail page's address names, for a `typename` node: its global id, or the global id of
 * a raw uuid (as the audit log export has them). Null when it cannot name one (malformed, cut short, or
 * another type's id), so the page says Not found without asking the server, which refuses such an id
 * as an error rather than answering null.
 */
export function nodeId(typename: string, param: string): string | null {
  if (UUID.test(param)) return globalId(typename, param);
  let decoded: string;
  try {
    decoded = atob(param);
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  return decoded.slice(0, colon) === typename && UUID.test(decoded.slice(colon + 1)) ? param : null;
}
