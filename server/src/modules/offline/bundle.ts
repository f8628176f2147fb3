import { randomUUID } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { AppDeps } from '../../context.ts';
import { ConflictError, NotFoundError } from '../../errors.ts';
import { actorFor } from '../../persisted.ts';
import type { ServiceContext } from '../audit/service.ts';
import { parseId } from '../common/ids.ts';
import { adminRouteRefusal } from '../security/ratelimit.ts';
import { routePlugin } from '../security/routes.ts';
import { hasRole } from '../tenants/roles.ts';
import { signerFor } from '../signing/service.ts';
import { currentOfflineLicense, refreshOfflineLicense } from './service.ts';

export const BUNDLE_PATH = '/offline/bundle';

/** A POSIX ustar archive of small text files: what every site operator can open, no dependency. */
export function tar(files: { name: string; content: string }[], mtime = new Date()): ArrayBuffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const body = Buffer.from(f.content, 'utf8');
    const h = Buffer.alloc(512);
    h.write(f.name.slice(0, 99), 0, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write(`${Math.floor(mtime.getTime() / 1000).toString(8).padStart(11, '0')}\0`, 136);
    h.write('        ', 148); // checksum field counts as spaces while summing
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  const all = Buffer.concat(blocks);
  return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
}

function readme(tenant: string, licenseId: string, revision: number): string {
  return `Offline license update from ${tenant}
===========================================

This bundle holds:
  license.lic  the signed license file for this machine (license ${licenseId}, revision ${revision})
  jwks.json    ${tenant}'s public signing keys, to verify the file

On the air-gapped machine:
  1. Copy license.lic (and jwks.json if the application asks for keys) onto the machine.
  2. Install it:      tessera-client install license.lic --tenant ${tenant} --jwks jwks.json
     (or use the application's own "Install license file" screen).
  3. Check it:        tessera-client status --tenant ${tenant} --jwks jwks.json

The file is bound to this machine: it does not verify on another one. A file with a lower revision
than the one installed is refused, so an old bundle cannot roll back a renewal.
To move the license to another machine, run \`tessera-client deactivate --offline -o deactivation.txt\`
and send deactivation.txt to ${tenant}.
`;
}

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } });

/**
 * `/offline/bundle?activationId=<id>` (bearer token or console session, SUPPORT or above): a .tar for the
 * site operator. `POST` issues a refresh (the license's current revision, recorded as
 * `license.refresh_issued`, the license in sync once every device has it), like refreshOfflineLicense.
 * `GET` changes nothing: it packs the file the machine was last issued, signed again, and answers 409
 * when the license changed since (a GET cannot be what sends a change and marks it delivered: a link
 * prefetcher or a crawler would). Other failures than these answers are routePlugin's (503 in an outage,
 * masked 500).
 */
async function offlineBundle(app: AppDeps, request: Request, url: URL): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'POST') return text(405, 'GET or POST only\n', { allow: 'GET, POST' });
  const actor = await actorFor(app.prisma, request);
  if (actor.kind === 'anonymous') return text(401, 'Authentication required\n');
  if (!hasRole(actor, 'SUPPORT')) return text(403, 'Your role does not allow this\n');
  const limited = await adminRouteRefusal(app, actor);
  if (limited) return limited;
  let activationId: string;
  try {
    activationId = parseId(url.searchParams.get('activationId') ?? '', 'Activation', 'activationId');
  } catch {
    return text(400, 'Give ?activationId=<id>\n');
  }
  const ctx: ServiceContext = { app, prisma: app.prisma, actor, requestId: request.headers.get('x-request-id') ?? randomUUID() };
  try {
    const { licenseFile } = await (request.method === 'POST' ? refreshOfflineLicense : currentOfflineLicense)(ctx, activationId);
    const activation = await app.prisma.activation.findUniqueOrThrow({ where: { id: activationId }, include: { license: true } });
    const { slug } = await app.prisma.tenant.findUniqueOrThrow({ where: { id: activation.tenantId }, select: { slug: true } });
    const jwks = await signerFor(app).jwks(slug);
    const archive = tar([
      { name: 'license.lic', content: licenseFile },
      { name: 'jwks.json', content: `${JSON.stringify(jwks, null, 2)}\n` },
      { name: 'README.txt', content: readme(slug, activation.licenseId, activation.license.revision) },
    ]);
    return new Response(archive, {
      status: 200,
      headers: {
        'content-type': 'application/x-tar',
        'content-disposition': `attachment; filename="tessera-offline-${activation.license.key}.tar"`,
        'cache-control': 'no-store',
      },
    });
  } catch (err) {
    if (err instanceof NotFoundError) return text(404, `${err.message}\n`);
    if (err instanceof ConflictError) return text(409, `${err.message}\n`);
    throw err;
  }
}

export function offlineBundlePlugin(app: AppDeps, logger: Logger): Plugin {
  return routePlugin(logger, BUNDLE_PATH, ({ request, url }) => offlineBundle(app, request, url));
}
