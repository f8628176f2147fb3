import type os from 'node:os';
import { describe, expect, it } from 'vitest';
import { collectFingerprint, type Component, type MachineView, rawComponents } from '../src/fingerprint.ts';

// The collector on machines described here (files, /sys entries, interfaces), not on the one running the test.

interface Nic {
  name: string;
  mac: string;
  /** A physical interface (a device behind it in /sys/class/net). */
  physical: boolean;
  /** Link up with an address: only then does os.networkInterfaces list it. */
  up: boolean;
}

function machine(m: { machineId?: string; productUuid?: string; hostname: string; cpu?: string; nics?: Nic[]; linux?: boolean }): MachineView {
  const nics = m.nics ?? [];
  const linux = m.linux ?? true;
  const files = new Map<string, string>();
  if (m.machineId) files.set('/etc/machine-id', m.machineId);
  if (m.productUuid) files.set('/sys/class/dmi/id/product_uuid', m.productUuid);
  for (const n of nics) files.set(`/sys/class/net/${n.name}/address`, n.mac);
  return {
    readFile: (file) => (linux ? (files.get(file) ?? null) : null),
    readDir: (dir) => (linux && dir === '/sys/class/net' ? ['lo', ...nics.map((n) => n.name)] : null),
    exists: (file) => linux && nics.some((n) => n.physical && file === `/sys/class/net/${n.name}/device`),
    networkInterfaces: () =>
      Object.fromEntries(
        nics.filter((n) => n.up).map((n) => [n.name, [{ address: '10.0.0.2', netmask: '255.0.0.0', family: 'IPv4', mac: n.mac, internal: false, cidr: '10.0.0.2/8' }]]),
      ) as ReturnType<typeof os.networkInterfaces>,
    cpus: () => Array.from({ length: 8 }, () => ({ model: m.cpu ?? 'AMD EPYC 7763 64-Core Processor' })),
    hostname: () => m.hostname,
  };
}

const fingerprint = (m: MachineView) => collectFingerprint('acme', rawComponents(m)).fingerprint;

describe('machines with a machine id keep their fingerprint', () => {
  const components: Component[] = [
    { kind: 'MACHINE_ID', value: '4c4c4544004d3510804bc4c04f4b3432' },
    { kind: 'MAC', value: '00:1b:21:3a:4f:5e' },
    { kind: 'CPU', value: 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz x8' },
    { kind: 'HOST_ID', value: '8c1b3a7e-2f44-4d7a-9a55-0e2b8d1f6c21' },
  ];

  it('gives the fingerprints existing activations were made with', () => {
    // Computed by the collector before the MAC and hostname changes; activations on the server hold them.
    expect(collectFingerprint('acme', components).fingerprint).toBe('015904472ddc741d93cfa319f546ba56242c49dd1de035595971add12a2e28b7');
    expect(collectFingerprint('acme', components.filter((c) => c.kind !== 'HOST_ID')).fingerprint).toBe('37cb20168b2e3b5423d3a5ae59d76dc8ccdd97ba132946eade63fb886a6eb858');
  });

  it('reads the machine id, and neither the hostname nor the network changes the fingerprint', () => {
    const a = machine({ machineId: '4c4c4544004d3510804bc4c04f4b3432', hostname: 'box-a', nics: [{ name: 'eth0', mac: '00:1b:21:3a:4f:5e', physical: true, up: true }] });
    const b = machine({ machineId: '4c4c4544004d3510804bc4c04f4b3432', hostname: 'renamed', nics: [] });
    expect(rawComponents(a)).toContainEqual({ kind: 'MACHINE_ID', value: '4c4c4544004d3510804bc4c04f4b3432' });
    expect(rawComponents(a).some((c) => c.kind === 'HOSTNAME')).toBe(false);
    expect(fingerprint(a)).toBe(fingerprint(b));
    expect(fingerprint(a)).toBe(collectFingerprint('acme', [{ kind: 'MACHINE_ID', value: '4c4c4544004d3510804bc4c04f4b3432' }]).fingerprint);
  });
});

describe('machines without a machine id', () => {
  it('tells apart two containers of one CPU model with only locally administered MACs', () => {
    const container = (hostname: string) => machine({ hostname, nics: [{ name: 'eth0', mac: '02:42:ac:11:00:02', physical: false, up: true }] });
    expect(fingerprint(container('box-a'))).not.toBe(fingerprint(container('box-b')));
    expect(rawComponents(container('box-a'))).toContainEqual({ kind: 'HOSTNAME', value: 'box-a' });
  });

  it('tells apart two hosts off Linux (no /etc, no /sys) of one CPU model with randomised MACs', () => {
    const host = (hostname: string) => machine({ hostname, linux: false, nics: [{ name: 'en0', mac: '3a:1f:22:33:44:55', physical: true, up: true }] });
    expect(fingerprint(host('mac-a'))).not.toBe(fingerprint(host('mac-b')));
  });

  it('keeps the fingerprint whether a physical NIC has its link up or down', () => {
    const host = (up: boolean) =>
      machine({
        hostname: 'plant-7',
        nics: [
          { name: 'enp3s0', mac: '00:11:22:33:44:55', physical: true, up },
          { name: 'veth1', mac: '00:11:22:33:44:66', physical: false, up: true },
        ],
      });
    expect(rawComponents(host(true))).toContainEqual({ kind: 'MAC', value: '00:11:22:33:44:55' });
    expect(rawComponents(host(true)).filter((c) => c.kind === 'MAC')).toHaveLength(1);
    expect(fingerprint(host(false))).toBe(fingerprint(host(true)));
  });
});
