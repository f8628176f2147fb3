import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/** A real server process (`src/main.ts`), for tests where several instances or a process exit matter. */
export interface Instance {
  child: ChildProcess;
  url: string;
  /** Everything the process printed so far (its logs): for a failing test's message. */
  output(): string;
}

const serverDir = path.resolve(import.meta.dirname, '..');

/** Starts `src/main.ts` with exactly `env` (plus PATH and HOME) and resolves once it prints its URL. */
export function startInstance(env: Record<string, string>): Promise<Instance> {
  // Node itself, as README's deployment runs it, not tsx's command: that one is a wrapper process, and a
  // signal sent to it (a test's kill, a timeout's SIGKILL) must reach the server, not leave it orphaned.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: serverDir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`instance did not start:\n${output}`)), 90_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const m = /serving at (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, output: () => output });
      }
    });
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance exited with ${code}:\n${output}`));
    });
  });
}

/** How a process ended: its exit code, or the signal that killed it. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Sends SIGTERM and resolves once the process has ended, however it ended (a process killed by a signal
 * has no exit code). One still there 20 s later (past the server's own 15 s shutdown limit) is killed.
 */
export function stopInstance(i: Instance): Promise<Exit> {
  const ended = (): Exit => ({ code: i.child.exitCode, signal: i.child.signalCode });
  return new Promise((resolve) => {
    if (i.child.exitCode !== null || i.child.signalCode !== null) return resolve(ended());
    const timer = setTimeout(() => i.child.kill('SIGKILL'), 20_000);
    i.child.once('exit', () => {
      clearTimeout(timer);
      resolve(ended());
    });
    i.child.kill('SIGTERM');
  });
}
