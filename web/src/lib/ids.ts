const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Relay global id of a raw database id (the audit log stores raw ids); global ids pass through. */
export function globalId(typename: string, id: string): string {
  return UUID.test(id) ? btoa(`${typename}:${id}`) : id;
}
