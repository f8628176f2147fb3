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
