#!/usr/bin/env node
/**
 * tessera-client: the customer-side tool for machines that run a vendor's product.
 *   tessera-client fingerprint                 this machine's fingerprint and hashed components
 *   tessera-client request <key> [-o file]     write an offline activation request file
 *   tessera-client install <file>              verify and install a license (or refresh) file
 *   tessera-client verify <file>               verify a license file without installing it
 *   tessera-client status                      what is installed, and whether it is valid now (exit 1 if not)
 *   tessera-client deactivate --offline [-o f] remove the license, write the signed deactivation file
 *                                              (offline deactivation is the only kind here: the flag is required)
 * Options: --tenant <slug> (required), --jwks <file> (the vendor's public keys), --state <file>
 * (default ~/.tessera/<tenant>.json, as the app's: defaultStatePath), --json for machine-readable output.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { decodeJwt, type JSONWebKeySet } from 'jose';
import { createClient } from './client.ts';
import { TesseraError } from './errors.ts';
import { defaultStatePath, fileStorage } from './storage.ts';
import { entitlementsOf } from './entitlements.ts';
import { unarmor, verifyDocument } from './verify.ts';

const USAGE = 'usage: tessera-client <fingerprint|request <key>|install <file>|verify <file>|status|deactivate --offline> --tenant <slug> [--jwks file] [--state file] [-o file] [--json]';
const json = process.argv.includes('--json');

/** Bad arguments: the usage line (and a JSON error under --json), exit 2. */
function usage(message?: string): number {
  if (json) console.log(JSON.stringify({ error: { code: 'USAGE', message: message ?? USAGE } }));
  if (message) console.error(`tessera-client: ${message}`);
  console.error(USAGE);
  return 2;
}

/** A bad argument found past parsing (a file that cannot be read, keys that are no key set): exit 2 too. */
class UsageError extends Error {}

function readArgument(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Makes sure the -o file can be written before anything changes (a deactivation removes the license: a
 * deactivation file it then could not save would leave the vendor's seat taken, with no way to free it
 * from here). Returns how to undo it when nothing is written after all: a file it created is removed.
 */
function claimOutput(file: string): () => void {
  const existed = existsSync(file);
  try {
    writeFileSync(file, '', { flag: 'a' });
  } catch (err) {
    throw new UsageError(`cannot write -o ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return () => {
    if (!existed) rmSync(file, { force: true });
  };
}

/** The vendor's public keys, as GET /.well-known/jwks.json?tenant=<slug> gives them. */
function readJwks(file: string): JSONWebKeySet {
  let jwks: unknown;
  try {
    jwks = JSON.parse(readArgument(file, '--jwks'));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--jwks ${file} is not JSON: ${(err as Error).message}`);
  }
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) {
    throw new UsageError(`--jwks ${file} is not a key set ({"keys": [...]}, from /.well-known/jwks.json?tenant=<slug>)`);
  }
  return jwks as JSONWebKeySet;
}

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      jwks: { type: 'string' },
      state: { type: 'string' },
      endpoint: { type: 'string', default: 'http://localhost:4000/graphql' },
      output: { type: 'string', short: 'o' },
      json: { type: 'boolean', default: false },
      offline: { type: 'boolean', default: false },
    },
  });
}

function out(value: unknown, human: string) {
  console.log(json ? JSON.stringify(value) : human);
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, arg] = positionals;
  if (!command) return usage();
  if (!values.tenant) return usage('--tenant <slug> is required');
  if (command === 'deactivate' && !values.offline) return usage('deactivate needs --offline: this tool only writes the offline deactivation file');
  if ((command === 'request' || command === 'verify' || command === 'install') && !arg) return usage(`${command} needs ${command === 'request' ? 'the license key' : 'a file'}`);
  const publicKeys = values.jwks ? readJwks(values.jwks) : undefined;
  const statePath = values.state ?? defaultStatePath(values.tenant);
  const client = createClient({ endpoint: values.endpoint!, tenant: values.tenant, publicKeys, storage: fileStorage(statePath) });

  switch (command) {
    case 'fingerprint':
      out(client.device, `${client.device.fingerprint}\n${client.device.components.map((c) => `  ${c.kind} ${c.value}`).join('\n')}`);
      return 0;
    case 'request': {
      const unclaim = values.output ? claimOutput(values.output) : undefined;
      const file = await client.createActivationRequest(arg!).catch((err: unknown) => {
        unclaim?.();
        throw err;
      });
      if (values.output) writeFileSync(values.output, file);
      else process.stdout.write(file);
      if (values.output) out({ written: values.output }, `wrote ${values.output}: send it to your vendor`);
      return 0;
    }
    case 'verify':
    case 'install': {
      const text = readArgument(arg!, 'the file');
      const verified = command === 'install' ? await client.installLicenseFile(text) : await client.verifyLicenseFile(text);
      const p = verified.payload;
      out({ valid: true, installed: command === 'install', claims: p }, `${command === 'install' ? 'installed' : 'valid'}: license ${p.sub}, revision ${p.revision}, expires ${p.licenseExpiresAt ?? p.exp ?? 'never'}, features ${JSON.stringify(p.features ?? [])}, entitlements ${entitlementsOf(p).map((e) => `${e.feature}=${e.limit}`).join(';') || 'none'}`);
      return 0;
    }
    case 'deactivate': {
      // Offline deactivation: removes the installed license and writes the signed file for the vendor.
      const unclaim = values.output ? claimOutput(values.output) : undefined;
      const file = await client.createDeactivationFile().catch((err: unknown) => {
        unclaim?.();
        throw err;
      });
      if (values.output) {
        try {
          writeFileSync(values.output, file);
        } catch (err) {
          // The license is gone from this machine: the file must not be lost with it.
          process.stderr.write(file);
          throw new TesseraError('STORAGE_FAILED', `the license is removed, but ${values.output} could not be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the deactivation file is printed on standard error; send it to your vendor`);
        }
      } else process.stdout.write(file);
      if (values.output) out({ written: values.output }, `license removed; wrote ${values.output}: send it to your vendor`);
      return 0;
    }
    case 'status': {
      const state = await client.state();
      if (!state.licenseFile && !state.token) {
        out({ installed: false }, 'no license installed');
        return 1;
      }
      try {
        if (!publicKeys) throw new TesseraError('INVALID_SIGNATURE', `cannot verify the ${state.licenseFile ? 'license file' : 'activation token'} without the vendor keys (--jwks)`);
        // The app's answer without the server (validateOffline), so that the two never disagree. Valid: its
        // claims are those of what it just verified.
        const offline = await client.validateOffline();
        if (offline.valid) {
          const claims = decodeJwt(unarmor(state.licenseFile ?? state.token!));
          out({ installed: true, valid: true, revision: state.revision, claims }, `license installed and valid (revision ${state.revision})`);
          return 0;
        }
        if (state.refusal) throw new TesseraError(state.refusal.code as TesseraError['code'], `the server refused this device at ${state.refusal.at}`);
        if (offline.code === 'GRACE_PERIOD_EXPIRED') {
          throw new TesseraError('GRACE_PERIOD_EXPIRED', `no contact with the server within the grace period (the last ${state.lastOnlineAt ? `at ${state.lastOnlineAt}` : 'never'}); run the app online`);
        }
        // Anything else is the signed file or token itself: its verification says what, in detail.
        if (state.licenseFile) await client.verifyLicenseFile(state.licenseFile);
        else {
          await verifyDocument(state.token!, {
            jwks: publicKeys,
            kind: 'activation',
            issuer: values.tenant,
            fingerprint: client.device.fingerprint,
            now: new Date(Date.now() + (state.clockOffsetMs ?? 0)),
            lastSeenTime: state.lastSeenTime ? new Date(state.lastSeenTime) : undefined,
          });
        }
        throw new TesseraError(offline.code ?? 'INVALID_SIGNATURE', 'the license does not hold on this machine');
      } catch (err) {
        const e = err as TesseraError;
        out({ installed: true, valid: false, code: e.code, message: e.message }, `license installed but not valid: ${e.code}: ${e.message}`);
        return 1;
      }
    }
    default:
      return usage(`unknown command ${command}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) process.exit(usage(err.message));
    const e = err instanceof TesseraError ? err : new TesseraError('BAD_RESPONSE', String((err as Error).message ?? err));
    if (json) console.log(JSON.stringify({ error: { code: e.code, message: e.message } }));
    else console.error(`${e.code}: ${e.message}`);
    process.exit(1);
  },
);
