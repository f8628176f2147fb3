import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Instance, startInstance, stopInstance } from '../test/processes.ts';

// `pnpm start` as an operator meets it: src/main.ts in a process of its own, on the embedded database.
const dirs: string[] = [];
const instances: Instance[] = [];
afterAll(async () => {
  await Promise.all(instances.map(stopInstance));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-main-'));
  dirs.push(dir);
  return dir;
}

/** The start's failure: what the process printed before it exited. */
async function failedStart(env: Record<string, string>): Promise<string> {
  const started = startInstance(env).then((i) => {
    instances.push(i);
    throw new Error(`started at ${i.url}`);
  });
  const err = await started.catch((e: Error) => e);
  expect(err.message).toMatch(/^instance exited with 1:/);
  return err.message;
}

const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

describe('start-up', () => {
  it('a bad setting fails the start with one line naming it, no stack trace', async () => {
    const output = await failedStart({ LOG_LEVEL: 'verbose', TESSERA_DATA_DIR: dataDir(), PORT: '0' });
    expect(output).toContain('Tessera failed to start: LOG_LEVEL must be one of');
    expect(output).not.toMatch(STACK_FRAME);
  });

  it('a port already taken fails the start plainly, before the demo tenant is made, and lets go of the data dir', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = String((blocker.address() as { port: number }).port);
    const dir = dataDir();
    const env = { TESSERA_DATA_DIR: dir, HOST: '127.0.0.1', TESSERA_MASTER_KEY: 'b'.repeat(64) };
    try {
      const output = await failedStart({ ...env, PORT: port });
      expect(output).toContain(`Tessera failed to start: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
      expect(output).not.toMatch(STACK_FRAME);
      expect(output).not.toContain('API token');
    } finally {
      blocker.close();
    }
    // Nothing left holding the data dir, and no demo tenant whose one-time token nobody saw.
    expect(readdirSync(dir).filter((f) => f === 'tessera.pid' || f.startsWith('.s.PGSQL'))).toEqual([]);
    expect(existsSync(path.join(dir, 'demo-credentials.json'))).toBe(false);

    const next = await startInstance({ ...env, PORT: '0' });
    instances.push(next);
    expect(next.output()).toContain('Created the "demo" tenant');
    expect(next.output()).toMatch(/API token \(OWNER, shown once\): tsr_/);
  }, 240_000);
});
