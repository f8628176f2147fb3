import { type AuditEvent, Prisma } from '@tessera/db/client';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { AppDeps } from '../../context.ts';
import { ValidationError } from '../../errors.ts';
import { adminRouteRefusal } from '../security/ratelimit.ts';
import { type RouteCall, routePlugin } from '../security/routes.ts';
import { hasRole } from '../tenants/roles.ts';
import { authenticate, bearerOf, cookieValue, SESSION_COOKIE } from '../tenants/service.ts';
import { type AuditFilter, auditFilterArgs, exactEventTypes } from './history.ts';

export const EXPORT_PATH = '/audit/export';
const BATCH = 1000;

const COLUMNS = [
  'id',
  'seq',
  'occurredAt',
  'type',
  'actorType',
  'actorId',
  'subjectType',
  'subjectId',
  'licenseId',
  'customerId',
  'requestId',
  'payload',
  'prevHash',
  'hash',
] as const;

function record(r: AuditEvent): Record<(typeof COLUMNS)[number], unknown> {
  return {
    id: r.id.toString(),
    seq: r.seq === null ? null : r.seq.toString(),
    occurredAt: r.occurredAt.toISOString(),
    type: r.type,
    actorType: r.actorType,
    actorId: r.actorId,
    subjectType: r.subjectType,
    subjectId: r.subjectId,
    licenseId: r.licenseId,
    customerId: r.customerId,
    requestId: r.requestId,
    payload: r.payload,
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  // Quote always when needed; neutralise spreadsheet formulas (CSV injection).
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) || safe !== s ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** An ISO date of years 1 to 9999: JavaScript accepts years PostgreSQL's timestamp cannot hold (an error, not a 400). */
function parseDate(v: string | null): Date | null | 'invalid' {
  if (!v) return null;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return 'invalid';
  const year = d.getUTCFullYear();
  return year < 1 || year > 9999 ? 'invalid' : d;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** The export's parameters: its format, a time range, and the audit log's filters as `auditEvents` takes them. */
const PARAMETERS = new Set(['format', 'from', 'to', 'type', 'types', 'licenseId']);

/**
 * The filter of an export URL, checked: a parameter the export does not know (a misspelt one, the console
 * page's `license`) or a filter given twice is refused, for a file that silently holds every event would
 * pass for the filtered one. `types` repeats (`types=a&types=b`), as the query's list.
 */
function exportFilter(params: URLSearchParams): AuditFilter {
  for (const name of new Set(params.keys())) {
    if (!PARAMETERS.has(name)) throw ValidationError.field(name, `unknown parameter \`${name}\`; the export takes ${[...PARAMETERS].join(', ')}`);
    if (name !== 'types' && params.getAll(name).length > 1) throw ValidationError.field(name, 'given more than once (several types are `types`)');
  }
  return auditFilterArgs({ type: params.get('type'), types: params.has('types') ? params.getAll('types') : null, licenseId: params.get('licenseId') });
}

/**
 * GET /audit/export?format=csv|jsonl&from=<ISO>&to=<ISO>&type=|types=&licenseId=, ADMIN or above: from
 * inclusive, to exclusive; `type`, `types` (exact types or `<domain>.*`) and `licenseId` mean what they
 * mean to `auditEvents`, so the file holds the events the audit page lists. A bad parameter is a 400 with
 * the message (and `fields`, as a BAD_USER_INPUT error's), before anything is read.
 * The body is a stream pulled in keyset-paginated batches of (occurredAt, id): the database and the
 * process hold one batch at a time, and a slow client slows the reads down (stream backpressure).
 * The first batch is read before answering, so a database that fails then gets routePlugin's 503; one
 * that fails later cuts the transfer (call.failStream).
 */
export async function exportAuditLog(deps: AppDeps, call: RouteCall): Promise<Response> {
  const { request } = call;
  if (request.method !== 'GET') return json(405, { error: 'method not allowed' });
  const actor = await authenticate(
    deps.prisma,
    bearerOf(request.headers.get('authorization')),
    cookieValue(request.headers.get('cookie'), SESSION_COOKIE),
  );
  if (actor.kind === 'anonymous') return json(401, { error: 'UNAUTHENTICATED' });
  if (!hasRole(actor, 'ADMIN')) return json(403, { error: 'FORBIDDEN' });
  const limited = await adminRouteRefusal(deps, actor);
  if (limited) return limited;
  const url = new URL(request.url);
  let filter: AuditFilter;
  try {
    filter = exportFilter(url.searchParams);
  } catch (err) {
    if (err instanceof ValidationError) return json(400, { error: err.message, fields: err.fields });
    throw err;
  }
  const format = url.searchParams.get('format') ?? 'jsonl';
  if (format !== 'csv' && format !== 'jsonl') return json(400, { error: 'format must be csv or jsonl' });
  const from = parseDate(url.searchParams.get('from'));
  const to = parseDate(url.searchParams.get('to'));
  if (from === 'invalid' || to === 'invalid') return json(400, { error: 'from and to must be ISO-8601 dates' });
  const tenantId = actor.tenantId;
  const { licenseId } = filter;
  const types = filter.types ? await exactEventTypes(deps, tenantId, filter.types) : null;

  let cursor: { occurredAt: Date; id: bigint } | null = null;
  let done = false;
  /** The next batch's lines; sets `done` after the last one. */
  async function readBatch(): Promise<string> {
    const c: { occurredAt: Date; id: bigint } | null = cursor;
    // A row-value comparison on (occurredAt, id) walks the (tenantId, occurredAt, id) index: every
    // batch costs the same, however deep into the range it is.
    const rows = await deps.prisma.$queryRaw<AuditEvent[]>`
      SELECT * FROM "AuditEvent"
      WHERE "tenantId" = ${tenantId}::uuid
        ${from ? Prisma.sql`AND "occurredAt" >= ${from}` : Prisma.empty}
        ${to ? Prisma.sql`AND "occurredAt" < ${to}` : Prisma.empty}
        ${types ? (types.length ? Prisma.sql`AND type IN (${Prisma.join(types)})` : Prisma.sql`AND false`) : Prisma.empty}
        ${licenseId ? Prisma.sql`AND "licenseId" = ${licenseId}::uuid` : Prisma.empty}
        ${c ? Prisma.sql`AND ("occurredAt", id) > (${c.occurredAt}, ${c.id})` : Prisma.empty}
      ORDER BY "occurredAt", id
      LIMIT ${BATCH}`;
    let chunk = '';
    for (const r of rows) {
      const rec = record(r);
      chunk += format === 'csv' ? `${COLUMNS.map((k) => csvCell(rec[k])).join(',')}\r\n` : `${JSON.stringify(rec)}\n`;
    }
    const lastRow = rows[rows.length - 1];
    if (rows.length < BATCH || !lastRow) done = true;
    else cursor = { occurredAt: lastRow.occurredAt, id: lastRow.id };
    return chunk;
  }
  let first: string | undefined = await readBatch();
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (format === 'csv') controller.enqueue(encoder.encode(`${COLUMNS.join(',')}\r\n`));
    },
    async pull(controller) {
      try {
        const chunk = first ?? (await readBatch());
        first = undefined;
        if (chunk) controller.enqueue(encoder.encode(chunk));
        if (done) controller.close();
      } catch (err) {
        call.failStream(controller, err);
      }
    },
  });
  const stamp = new Date().toISOString().slice(0, 10);
  return new Response(stream, {
    status: 200,
    headers: {
      'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="audit-${stamp}.${format === 'csv' ? 'csv' : 'jsonl'}"`,
      'cache-control': 'no-store',
    },
  });
}

/** Serves the export route through yoga, so it shares its server, adapters and in-process fetch. */
export function auditExportPlugin(deps: AppDeps, logger: Logger): Plugin {
  return routePlugin(logger, EXPORT_PATH, (call) => exportAuditLog(deps, call));
}
