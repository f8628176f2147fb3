import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/*
 * Where a webhook may be sent. In production an endpoint must be https:// and every address its host
 * resolves to must be public: no loopback, private, link-local (cloud metadata), CGNAT, multicast or
 * reserved ranges, so a tenant cannot make the server call into its own network (SSRF). The check runs
 * when the endpoint is saved and again on every connection (the lookup below), so a host that later
 * resolves elsewhere (DNS rebinding) is refused too. Outside production anything goes, so tests and
 * local development can use http://127.0.0.1.
 */

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** Whether an IP address is one a webhook must never reach in production. IPv4-mapped IPv6 counts as IPv4. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    return blocked.check(address, 'ipv6') || blocked.check(address.toLowerCase(), 'ipv6');
  }
  return true;
}

/** The URL's host without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Every address the host resolves to (an IP literal resolves to itself). */
export async function resolveHost(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, list) => (err ? reject(err) : resolve(list))),
  );
  return addresses.map((a) => a.address);
}

/**
 * A `lookup` for http(s).request that refuses private addresses: the connection is made only to an
 * address checked here, whatever the host resolved to when the endpoint was saved.
 */
export const publicOnlyLookup = ((hostname: string, options: object, callback: (...args: unknown[]) => void) => {
  dnsLookup(hostname, { ...options, all: true, verbatim: true }, (err, list) => {
    if (err) return callback(err);
    const bad = list.find((a) => isPrivateAddress(a.address));
    if (bad || !list.length) {
      const refused = Object.assign(new Error(`${hostname} resolves to a non-public address (${bad?.address ?? 'none'})`), { code: 'EADDRNOTPUBLIC' });
      return callback(refused);
    }
    if ((options as { all?: boolean }).all) return callback(null, list);
    callback(null, list[0]!.address, list[0]!.family);
  });
}) as unknown as typeof dnsLookup;
