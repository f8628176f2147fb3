import { createHash, createHmac } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

/** What the collector reads of the machine; tests give it a machine of their own. */
export interface MachineView {
  /** A file's trimmed text, or null when absent or unreadable. */
  readFile(file: string): string | null;
  /** A directory's entries, or null when it does not exist (e.g. /sys/class/net off Linux). */
  readDir(dir: string): string[] | null;
  exists(file: string): boolean;
  networkInterfaces(): ReturnType<typeof os.networkInterfaces>;
  cpus(): { model: string }[];
  hostname(): string;
}

export const thisMachine: MachineView = {
  readFile(file) {
    try {
      const text = readFileSync(file, 'utf8').trim();
      return text || null;
    } catch {
      return null;
    }
  },
  readDir(dir) {
    try {
      return readdirSync(dir);
    } catch {
      return null;
    }
  },
  exists: (file) => existsSync(file),
  networkInterfaces: () => os.networkInterfaces(),
  cpus: () => os.cpus(),
  hostname: () => os.hostname(),
};

const usableMac = (mac: string) => /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac) && mac !== '00:00:00:00:00:00' && !isLocallyAdministered(mac);

/**
 * MACs of the network hardware. On Linux every physical interface (one with a device behind it in
 * /sys/class/net), whether its link is up or not: os.networkInterfaces lists only interfaces that
 * have an address, so unplugging a cable would change the machine. Elsewhere, os.networkInterfaces.
 */
function hardwareMacs(m: MachineView): string[] {
  const macs = new Set<string>();
  const sysNet = m.readDir('/sys/class/net');
  if (sysNet) {
    for (const name of sysNet) {
      if (VIRTUAL_INTERFACE.test(name) || !m.exists(`/sys/class/net/${name}/device`)) continue;
      const mac = m.readFile(`/sys/class/net/${name}/address`)?.toLowerCase();
      if (mac && usableMac(mac)) macs.add(mac);
    }
  } else {
    for (const [name, addrs] of Object.entries(m.networkInterfaces())) {
      if (VIRTUAL_INTERFACE.test(name)) continue;
      for (const a of addrs ?? []) {
        if (!a.internal && usableMac(a.mac)) macs.add(a.mac.toLowerCase());
      }
    }
  }
  return [...macs].sort();
}

/** Raw components of this machine, read without root. Each is optional: what is not readable is skipped. */
export function rawComponents(m: MachineView = thisMachine): Component[] {
  const out: Component[] = [];
  const machineId = m.readFile('/etc/machine-id') ?? m.readFile('/var/lib/dbus/machine-id');
  if (machineId) out.push({ kind: 'MACHINE_ID', value: machineId });
  for (const mac of hardwareMacs(m)) out.push({ kind: 'MAC', value: mac });
  const cpus = m.cpus();
  if (cpus.length) out.push({ kind: 'CPU', value: `${cpus[0]!.model.trim()} x${cpus.length}` });
  const productUuid = m.readFile('/sys/class/dmi/id/product_uuid');
  if (productUuid) out.push({ kind: 'HOST_ID', value: productUuid });
  for (const dev of (m.readDir('/sys/block') ?? []).filter((d) => !/^(loop|ram|zram|dm-|md|sr)/.test(d)).sort()) {
    const serial = m.readFile(`/sys/block/${dev}/device/serial`) ?? m.readFile(`/sys/block/${dev}/device/wwid`);
    if (serial) {
      out.push({ kind: 'DISK', value: serial });
      break;
    }
  }
  // A CPU model is shared by many machines: with nothing unique to this one (containers, hosts without
  // a machine id, randomised MACs only), the hostname is what tells two such machines apart.
  if (!out.some((c) => c.kind !== 'CPU')) out.push({ kind: 'HOSTNAME', value: m.hostname() });
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
