import { createHash, createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

export interface Component {
  kind: string;
  value: string;
}

export interface Fingerprint {
  /** A stable device id: the same machine gives the same string. */
  fingerprint: string;
  /** Hashed hardware components, for the server's fuzzy matching when one part changes. */
  components: Component[];
}

// Interfaces that come and go or are not hardware: containers, VPNs, bridges, hypervisors.
const VIRTUAL_INTERFACE = /^(lo|docker|veth|br-|virbr|vmnet|vboxnet|tun|tap|wg|utun|llw|awdl|bridge|zt|tailscale|cni|flannel|kube|podman)/i;
// Locally administered MACs (second bit of the first octet) are randomised or virtual.
const isLocallyAdministered = (mac: string) => (Number.parseInt(mac.slice(0, 2), 16) & 0b10) !== 0;

function read(file: string): string | null {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return text || null;
  } catch {
    return null;
  }
}

/** Raw components of this machine, read without root. Each is optional: what is not readable is skipped. */
export function rawComponents(): Component[] {
  const out: Component[] = [];
  const machineId = read('/etc/machine-id') ?? read('/var/lib/dbus/machine-id');
  if (machineId) out.push({ kind: 'MACHINE_ID', value: machineId });
  const macs = new Set<string>();
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (VIRTUAL_INTERFACE.test(name)) continue;
    for (const a of addrs ?? []) {
      if (a.internal || a.mac === '00:00:00:00:00:00' || isLocallyAdministered(a.mac)) continue;
      macs.add(a.mac.toLowerCase());
    }
  }
  for (const mac of [...macs].sort()) out.push({ kind: 'MAC', value: mac });
  const cpus = os.cpus();
  if (cpus.length) out.push({ kind: 'CPU', value: `${cpus[0]!.model.trim()} x${cpus.length}` });
  const productUuid = read('/sys/class/dmi/id/product_uuid');
  if (productUuid) out.push({ kind: 'HOST_ID', value: productUuid });
  try {
    for (const dev of readdirSync('/sys/block').filter((d) => !/^(loop|ram|zram|dm-|md|sr)/.test(d)).sort()) {
      const serial = read(`/sys/block/${dev}/device/serial`) ?? read(`/sys/block/${dev}/device/wwid`);
      if (serial) {
        out.push({ kind: 'DISK', value: serial });
        break;
      }
    }
  } catch {
    // no /sys/block (not Linux): no disk component
  }
  if (out.length === 0) out.push({ kind: 'HOSTNAME', value: os.hostname() });
  return out;
}

/**
 * Components are hashed with a per-tenant salt before they leave the machine, so the vendor learns no
 * MAC address or serial, and two vendors cannot correlate one customer's machines.
 */
export function hashComponents(components: Component[], salt: string): Component[] {
  return components.map((c) => ({ kind: c.kind, value: createHmac('sha256', salt).update(`${c.kind}:${c.value}`).digest('hex') }));
}

/** The stable fingerprint: a hash of the strongest identity available (machine id, else all components). */
export function fingerprintOf(components: Component[], salt: string): string {
  const anchor = components.filter((c) => c.kind === 'MACHINE_ID' || c.kind === 'HOST_ID');
  const basis = (anchor.length ? anchor : components).map((c) => `${c.kind}=${c.value}`).sort().join('\n');
  return createHash('sha256').update(`${salt}\n${basis}`).digest('hex');
}

export function collectFingerprint(salt: string, components: Component[] = rawComponents()): Fingerprint {
  const hashed = hashComponents(components, salt);
  return { fingerprint: fingerprintOf(hashed, salt), components: hashed };
}
