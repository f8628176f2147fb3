import { randomUUID } from 'node:crypto';
import type { Prisma } from '@tessera/db/client';
import { z } from 'zod';
import { ConflictError, ImportError, type RowProblem, ValidationError } from '../../errors.ts';
import { sealerOf } from '../audit/chain.ts';
import { actorOf, inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import { isUniqueViolation } from '../common/db.ts';
import { textProblems } from '../common/validate.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { catalogueOf } from '../catalog/service.ts';
import { completeTerms, editionTerms, LICENSE_TYPES, termFields, termProblems, type Catalogue } from '../catalog/terms.ts';
import { generateKey, parseKey } from './keys.ts';
import { licenseData, resolveExpiry } from './service.ts';

export const MAX_IMPORT_BYTES = 5 * 1024 * 1024;
export const MAX_IMPORT_ROWS = 10_000;

/**
 * RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines. Returns rows with their first
 * line number. A quoted field still open at the end of the text is an ImportError at the line it opened
 * on: read as text, it would swallow every row after it.
 */
export function parseCsv(text: string): { line: number; cells: string[] }[] {
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let quoteLine = 0;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        cell += c;
      }
    } else if (c === '"' && cell === '') {
      quoted = true;
      quoteLine = line;
    }
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      cells.push(cell);
      if (cells.some((v) => v !== '')) rows.push({ line: rowLine, cells });
      cells = [];
      cell = '';
      line++;
      rowLine = line;
    } else cell += c;
  }
  if (quoted) throw new ImportError([{ line: quoteLine, field: null, message: 'a quoted field opened on this line has no closing quote (")' }]);
  cells.push(cell);
  if (cells.some((v) => v !== '')) rows.push({ line: rowLine, cells });
  return rows;
}

// Term cells are checked by the same rules as createLicense's overrides (termFields), so an import
// cannot carry a zero cap or zero seats that the API would refuse.
// A cell is a plain decimal integer or nothing: Number() would also read "0x10", "1e3" or " " as numbers.
const intCell = (v: unknown) =>
  v === '' || v === undefined || v === null ? undefined : typeof v === 'string' ? (/^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : v) : v;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * An ISO 8601 date (midnight UTC) or date and time (UTC unless an offset is given), or null. Not new
 * Date(), which reads "365" as the year 365, "1" as 2001, 30 February as 2 March, and a time without an
 * offset (or "12/31/2027") in the server's own time zone.
 */
export function parseIsoDate(text: string): Date | null {
  const m = ISO_DATE.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone] = m;
  const offset = !zone || zone.toUpperCase() === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  // Calendar fields checked as given (Date.UTC would roll 30 February over into March).
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCFullYear() !== Number(y) || day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d)) return null;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return null;
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${sec}${frac.slice(0, 4)}${offset}`);
  return Number.isNaN(date.getTime()) ? null : date;
}

const optionalDate = z.preprocess(
  (v) => (v === '' || v == null ? undefined : typeof v === 'string' ? (parseIsoDate(v) ?? v) : v),
  z.date({ message: 'is not an ISO 8601 date (2027-12-31, or 2027-12-31T09:00:00Z)' }).optional(),
);
const optionalText = (max: number) => z.preprocess((v) => (v === '' || v == null ? undefined : v), z.string().trim().max(max, `must be at most ${max} characters`).optional());

// Strict: a misspelt JSONL field ("maxActivation") must fail its line, not be silently dropped.
const rowSchema = z.strictObject({
  product: z.string().trim().min(1, 'is required').max(64),
  edition: z.string().trim().min(1, 'is required').max(64),
  key: optionalText(64),
  name: optionalText(200),
  customer: optionalText(200),
  customerEmail: optionalText(254).pipe(z.string().email('is not an email address').optional()),
  type: z.preprocess((v) => (v === '' || v == null ? undefined : v), z.enum(LICENSE_TYPES).optional()),
  status: z.preprocess((v) => (v === '' || v == null ? undefined : v), z.enum(['ACTIVE', 'SUSPENDED', 'REVOKED']).optional()),
  startsAt: optionalDate,
  expiresAt: optionalDate,
  maxActivations: z.preprocess(intCell, termFields.maxActivations.unwrap().optional()),
  goodwillActivations: z.preprocess(intCell, termFields.goodwillActivations.optional()),
  seats: z.preprocess(intCell, termFields.seats.unwrap().optional()),
  features: z.preprocess(
    (v) => (v === '' || v == null ? undefined : typeof v === 'string' ? v.split(';').map((f) => f.trim()).filter(Boolean) : v),
    termFields.features.optional(),
  ),
  // CSV: "projects=10;seats-per-project=5"; JSONL: the same string or [{ "feature": "projects", "limit": 10 }].
  entitlements: z.preprocess(
    (v) => (v === '' || v == null ? undefined : typeof v === 'string' ? entitlementCell(v) : v),
    termFields.entitlements.optional(),
  ),
});

function entitlementCell(cell: string) {
  return cell
    .split(';')
    .map((pair) => pair.trim())
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.lastIndexOf('=');
      const limit = eq < 0 ? '' : pair.slice(eq + 1).trim();
      return { feature: eq < 0 ? pair : pair.slice(0, eq).trim(), limit: /^-?\d+$/.test(limit) ? Number(limit) : limit };
    });
}
type Row = z.infer<typeof rowSchema>;

// ---------------------------------------------------------------------------------------------
// Problems, in words: zod's own messages ("Invalid input: expected string, received number") are never shown.

const COLUMNS = Object.keys(rowSchema.shape);
const REQUIRED_COLUMNS = ['product', 'edition'];
/** Terms reported under another name than the import's: the type column sets the license type (and its provisioning). */
const TERM_COLUMN: Record<string, string> = { licenseType: 'type', provisioning: 'type' };

/**
 * A problem at `path` of a line: the first segment is the field, the rest is said in words ("entry 2",
 * "limit"). `text` says what is wrong ("must be ...", "is required", or a sentence of its own).
 */
function problemAt(line: number, path: readonly PropertyKey[], text: string): RowProblem {
  const [head, ...rest] = path;
  if (head === undefined) return { line, field: null, message: text };
  const field = TERM_COLUMN[String(head)] ?? String(head);
  const where = rest.map((s) => (typeof s === 'number' || /^\d+$/.test(String(s)) ? `entry ${Number(s) + 1}` : String(s))).join(', ');
  const joint = /^(must|is|are|has|holds)\b/.test(text) ? ' ' : ': ';
  return { line, field, message: `${field}: ${where ? `${where}${joint}` : ''}${text}` };
}

/** A dotted path ("features.1") as problemAt takes it. */
const dotted = (path: string) => (path ? path.split('.') : []);

const quote = (text: string) => JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);

/** A value as a sentence names it: text ("many"), a number (5), a list, an object, true, null. */
function described(value: unknown): string {
  if (typeof value === 'string') return `text (${quote(value)})`;
  if (typeof value === 'number') return `a number (${value})`;
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** "A, B or C". */
const oneOf = (values: readonly unknown[]) => {
  const names = values.map(String);
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : (names[0] ?? '');
};

const EXPECTED: Record<string, string> = { string: 'text', number: 'a whole number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'an object' };
/** What a whole field holds, where "a list" says too little. */
const EXPECTED_FIELD: Record<string, string> = {
  features: 'a list of feature codes (or one text of codes separated by ";")',
  entitlements: 'a list of {"feature": ..., "limit": ...} (or one text of feature=limit pairs separated by ";")',
};

/** The words for an issue the schema gave no message of its own (those pass as written). */
const issueText: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined || issue.input === null) return 'is required';
      const expected = (issue.path?.length === 1 && EXPECTED_FIELD[String(issue.path[0])]) || EXPECTED[issue.expected] || issue.expected;
      return `must be ${expected}, not ${described(issue.input)}`;
    }
    case 'invalid_value':
      return `must be one of ${oneOf(issue.values)}, not ${typeof issue.input === 'string' ? quote(issue.input) : described(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'string') return Number(issue.minimum) <= 1 ? 'must not be empty' : `must be at least ${issue.minimum} characters`;
      if (issue.origin === 'array') return `must have at least ${issue.minimum} entries`;
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      if (issue.origin === 'array') return `must have at most ${issue.maximum} entries`;
      return `must be at most ${issue.maximum}`;
    default:
      return 'is not valid';
  }
};

/** The closest known name to a misspelt one ("maxActivation", "Expires"), if one is close. */
function closest(name: string, known: readonly string[]): string | null {
  const a = name.trim().toLowerCase();
  let best: { name: string; distance: number } | null = null;
  for (const k of known) {
    const b = k.toLowerCase();
    const distance = a.length >= 4 && b.startsWith(a) ? 1 : editDistance(a, b);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name: k, distance };
  }
  return best?.name ?? null;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

function unknownName(line: number, name: string, what: 'field' | 'column'): RowProblem {
  const near = closest(name, COLUMNS);
  return problemAt(line, [name], `is not a license ${what} (${near ? `did you mean ${near}?` : `${what}s: ${COLUMNS.join(', ')}`})`);
}

/** The problems of one row's values (its text, then its shape and types), or its parsed row. */
function parseRow(line: number, raw: Record<string, unknown>): { row: Row } | { problems: RowProblem[] } {
  const text = [...textProblems(raw).map((p) => problemAt(line, dotted(p.path), p.message)), ...unreadable(line, raw)];
  if (text.length) return { problems: text };
  const r = rowSchema.safeParse(raw, { error: issueText });
  if (r.success) return { row: r.data };
  return {
    problems: r.error.issues.flatMap((i) =>
      i.code === 'unrecognized_keys' ? i.keys.map((k) => unknownName(line, k, 'field')) : [problemAt(line, i.path, i.message)],
    ),
  };
}

/**
 * U+FFFD stands where the file held bytes that are not UTF-8: a file saved in another encoding (a
 * spreadsheet's "CSV" in Windows-1252), read as UTF-8. Imported, "Société" would be stored as "Soci?t?".
 */
function unreadable(line: number, raw: Record<string, unknown>): RowProblem[] {
  const out: RowProblem[] = [];
  const walk = (v: unknown, path: string[]) => {
    if (typeof v === 'string') {
      if (v.includes('\uFFFD')) out.push(problemAt(line, path, 'holds "\uFFFD", a character that could not be read: save the file as UTF-8 and import it again'));
    } else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(raw, []);
  return out;
}

const NOT_TEXT = 'is not a text file (a spreadsheet or a PDF?): export it as CSV (UTF-8) or JSON lines';

/**
 * Whole-file problems, said on the input field to change: not text at all, nothing in it, or the
 * other format than the one chosen.
 */
function fileProblem(format: 'CSV' | 'JSONL', data: string): ValidationError | null {
  const firstLine = data.slice(0, 1024).split(/\r?\n/, 1)[0]!;
  // Spreadsheets (zip), PDFs and other binaries: a NUL or an undecodable byte among the first ones.
  if (firstLine.includes('\u0000') || /^(%PDF-|PK\u0003\u0004)/.test(data) || data.slice(0, 8).includes('\uFFFD')) {
    return ValidationError.field('data', NOT_TEXT);
  }
  const first = data.split(/\r?\n/).find((l) => l.trim() !== '');
  if (first === undefined) return ValidationError.field('data', 'is empty');
  const head = first.trim();
  if (format === 'CSV' && (head.startsWith('{') || head.startsWith('['))) {
    return ValidationError.field('format', 'is CSV, but the contents are JSON: choose JSON lines');
  }
  if (format === 'JSONL') {
    if (head.startsWith('[')) {
      return ValidationError.field('data', 'is one JSON array: JSON lines needs one license object per line, with no [ ] around them');
    }
    if (!head.startsWith('{') && head.split(',').some((c) => COLUMNS.includes(c.trim()))) {
      return ValidationError.field('format', 'is JSON lines, but the contents look like CSV with a header row: choose CSV');
    }
  }
  return null;
}

/** The header row's problems: another separator than commas, nameless, unknown, repeated or missing columns. */
function headerProblems(line: number, names: string[]): RowProblem[] {
  const headerText = textProblems(names);
  if (headerText.length) return [{ line, field: null, message: `column names: ${headerText[0]!.message}` }];
  if (names.length === 1) {
    const separator = [';', '\t', '|'].find((c) => names[0]!.includes(c));
    if (separator) return [{ line, field: null, message: `columns must be separated by commas (this header row uses ${separator === '\t' ? 'tabs' : `"${separator}"`})` }];
  }
  const out: RowProblem[] = [];
  names.forEach((n, i) => {
    if (!n) out.push({ line, field: null, message: `column ${i + 1} has no name` });
    else if (!COLUMNS.includes(n)) out.push(unknownName(line, n, 'column'));
  });
  // Two columns of one name: which would win is a guess, so neither does.
  const repeated = [...new Set(names.filter((n, i) => n && names.indexOf(n) !== i))];
  if (repeated.length) out.push({ line, field: null, message: `column(s) given more than once: ${repeated.join(', ')}` });
  for (const required of REQUIRED_COLUMNS) {
    if (!names.includes(required)) out.push(problemAt(line, [required], `the column is missing (${oneOf(REQUIRED_COLUMNS).replace(' or ', ' and ')} are required)`));
  }
  return out;
}

/** The file's rows as raw values with their line numbers; any problem of the file's shape throws. */
function readRows(format: 'CSV' | 'JSONL', text: string): { line: number; raw: Record<string, unknown> }[] {
  // Spreadsheet exports often start with a UTF-8 byte order mark; it is not part of the first column's name.
  const data = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const whole = fileProblem(format, data);
  if (whole) throw whole;
  if (format === 'JSONL') {
    const out: { line: number; raw: Record<string, unknown> }[] = [];
    const bad: RowProblem[] = [];
    data.split(/\r?\n/).forEach((text, i) => {
      if (!text.trim()) return;
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        bad.push({ line: i + 1, field: null, message: 'not valid JSON' });
        return;
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad.push({ line: i + 1, field: null, message: `must be a JSON object, not ${described(raw)}` });
      else out.push({ line: i + 1, raw: raw as Record<string, unknown> });
    });
    if (bad.length) throw new ImportError(bad);
    return out;
  }
  const [header, ...rows] = parseCsv(data);
  if (!header) throw ValidationError.field('data', 'is empty');
  const names = header.cells.map((c) => c.trim());
  const headerIssues = headerProblems(header.line, names);
  if (headerIssues.length) throw new ImportError(headerIssues);
  if (!rows.length) throw ValidationError.field('data', 'has a header row but no licenses');
  const bad: RowProblem[] = [];
  const out = rows.map(({ line, cells }) => {
    if (cells.length !== names.length) bad.push({ line, field: null, message: `expected ${names.length} columns, found ${cells.length}` });
    return { line, raw: Object.fromEntries(names.map((n, i) => [n, cells[i] ?? ''])) };
  });
  if (bad.length) throw new ImportError(bad);
  return out;
}

/**
 * Imports licenses from another system, all or nothing: every row is checked (shape, product and
 * edition codes, terms, key format and uniqueness) and any problem rejects the whole file, listing
 * each bad row by line number.
 */
export async function importLicenses(ctx: ServiceContext, format: 'CSV' | 'JSONL', data: string): Promise<string[]> {
  const { tenantId } = tenantWhere(ctx.actor);
  const bytes = Buffer.byteLength(data);
  if (bytes > MAX_IMPORT_BYTES) {
    throw ValidationError.field('data', `is ${(bytes / 1024 / 1024).toFixed(1)} MB; at most ${MAX_IMPORT_BYTES / 1024 / 1024} MB can be imported at once: split it into smaller files`);
  }
  const raws = readRows(format, data);
  if (raws.length === 0) throw ValidationError.field('data', 'is empty');
  if (raws.length > MAX_IMPORT_ROWS) {
    throw ValidationError.field('data', `has ${raws.length} licenses; at most ${MAX_IMPORT_ROWS} can be imported at once: split it into smaller files`);
  }

  const problems: RowProblem[] = [];
  const rows: { line: number; row: Row }[] = [];
  for (const { line, raw } of raws) {
    const r = parseRow(line, raw);
    if ('row' in r) rows.push({ line, row: r.row });
    else problems.push(...r.problems);
  }

  const ids = await inTransaction(ctx, tenantId, async (tx) => {
    const products = await tx.product.findMany({ where: { tenantId, code: { in: [...new Set(rows.map((r) => r.row.product))] } } });
    const productByCode = new Map(products.map((p) => [p.code, p]));
    // FOR SHARE, as createLicense takes its edition: an edition being archived (or deleted) is waited for,
    // so its rows are refused, not issued from an edition archived meanwhile.
    if (products.length) {
      await tx.$queryRaw`SELECT id FROM "Edition" WHERE "tenantId" = ${tenantId}::uuid AND "productId" = ANY(${products.map((p) => p.id)}::uuid[]) ORDER BY id FOR SHARE`;
    }
    const editions = await tx.edition.findMany({ where: { tenantId, productId: { in: products.map((p) => p.id) } } });
    const editionBy = new Map(editions.map((e) => [`${e.productId}/${e.code}`, e]));
    const catalogues = new Map<string, Catalogue>();
    for (const p of products) catalogues.set(p.id, await catalogueOf(tx, p.id));

    const keys = rows.map((r) => (r.row.key ? parseKey(r.row.key)?.key : undefined)).filter((k): k is string => !!k);
    const taken = new Set((await tx.license.findMany({ where: { key: { in: keys } }, select: { key: true } })).map((l) => l.key));
    const seenKeys = new Map<string, number>();

    const emails = [...new Set(rows.map((r) => r.row.customerEmail?.toLowerCase()).filter((e): e is string => !!e))];
    // Customers found are key-share locked, as a license given to one holds it (service.ts, holdCustomer):
    // one deleted meanwhile is not found (and made again), one found stays until the import commits.
    const customers = emails.length
      ? await tx.$queryRaw<{ id: string; email: string }[]>`
          SELECT id, email FROM "Customer" WHERE "tenantId" = ${tenantId}::uuid AND email = ANY(${emails}::text[]) ORDER BY id FOR KEY SHARE`
      : [];
    const customerByEmail = new Map(customers.map((c) => [c.email, c.id]));
    const newCustomers: Prisma.CustomerCreateManyInput[] = [];
    // A customer named without an email is the tenant's customer of that name, if it has one: importing a
    // file in parts, or again after a fix, must not make a second "Acme". A name two customers share is
    // ambiguous and must come with the email.
    const names = [...new Set(rows.filter((r) => !r.row.customerEmail && r.row.customer).map((r) => r.row.customer!))];
    const named = names.length
      ? await tx.$queryRaw<{ id: string; name: string }[]>`
          SELECT id, name FROM "Customer" WHERE "tenantId" = ${tenantId}::uuid AND name = ANY(${names}::text[]) ORDER BY id FOR KEY SHARE`
      : [];
    const existingByName = new Map<string, string[]>();
    for (const c of named) existingByName.set(c.name, [...(existingByName.get(c.name) ?? []), c.id]);
    const customerByName = new Map<string, string>();

    const now = new Date();
    const creates: Prisma.LicenseCreateManyInput[] = [];
    for (const { line, row } of rows) {
      const bad = (field: string, text: string) => problems.push(problemAt(line, dotted(field), text));
      const product = productByCode.get(row.product);
      if (!product) {
        bad('product', `no product with code "${row.product}"`);
        continue;
      }
      const edition = editionBy.get(`${product.id}/${row.edition}`);
      if (!edition) {
        bad('edition', `product "${row.product}" has no edition "${row.edition}"`);
        continue;
      }
      if (edition.archivedAt) {
        bad('edition', `edition "${row.edition}" of product "${row.product}" is archived; unarchive it to issue licenses from it`);
        continue;
      }
      let key: string;
      if (row.key) {
        const parsed = parseKey(row.key);
        if (!parsed || parsed.kind !== 'LIC') {
          bad('key', 'is not a well-formed license key (LIC-XXXX-XXXXXXXXXXXX-XXXX with a valid check group)');
          continue;
        }
        key = parsed.key;
        if (taken.has(key)) bad('key', 'a license with this key already exists');
        const first = seenKeys.get(key);
        if (first !== undefined) bad('key', `is the same key as line ${first}`);
        seenKeys.set(key, line);
      } else key = generateKey('LIC');

      const base = editionTerms(edition);
      if (row.expiresAt || row.type === 'PERPETUAL') base.validityDays = null;
      const terms = completeTerms(
        {
          licenseType: row.type ?? base.licenseType,
          ...(row.maxActivations !== undefined ? { maxActivations: row.maxActivations } : {}),
          ...(row.goodwillActivations !== undefined ? { goodwillActivations: row.goodwillActivations } : {}),
          ...(row.seats !== undefined ? { seats: row.seats } : {}),
          ...(row.features !== undefined ? { features: row.features } : {}),
          ...(row.entitlements !== undefined ? { entitlements: row.entitlements } : {}),
        },
        base,
      );
      const { expiry, problems: expiryProblems } = resolveExpiry(terms, row.startsAt ?? null, row.expiresAt, now, '', true);
      const termIssues = [...expiryProblems, ...termProblems(terms, catalogues.get(product.id)!)];
      for (const p of termIssues) bad(p.path, p.message);
      if (termIssues.length) continue;

      let customerId: string | null = null;
      if (row.customerEmail) {
        const email = row.customerEmail.toLowerCase();
        customerId = customerByEmail.get(email) ?? null;
        if (!customerId) {
          customerId = randomUUID();
          customerByEmail.set(email, customerId);
          newCustomers.push({ id: customerId, tenantId, name: row.customer ?? email, email });
        }
      } else if (row.customer) {
        const existing = existingByName.get(row.customer) ?? [];
        if (existing.length > 1) {
          bad('customer', `${existing.length} customers are named "${row.customer}"; give customerEmail to say which`);
          continue;
        }
        customerId = existing[0] ?? customerByName.get(row.customer) ?? null;
        if (!customerId) {
          customerId = randomUUID();
          customerByName.set(row.customer, customerId);
          newCustomers.push({ id: customerId, tenantId, name: row.customer });
        }
      }
      const state = row.status ?? 'ACTIVE';
      creates.push({
        id: randomUUID(),
        tenantId,
        productId: product.id,
        editionId: edition.id,
        customerId,
        key,
        name: row.name ?? null,
        state,
        startsAt: row.startsAt ?? null,
        expiresAt: expiry,
        suspendedAt: state === 'SUSPENDED' ? now : null,
        revokedAt: state === 'REVOKED' ? now : null,
        metadata: { importedAtLine: line },
        ...licenseData(terms),
      });
    }
    if (problems.length) throw new ImportError(problems.sort((a, b) => a.line - b.line));

    try {
      await insertImport(tx, ctx, tenantId, newCustomers, creates, now);
    } catch (err) {
      // A key checked free above can be taken by a concurrent import before this insert (a raw statement's
      // violation comes as the driver adapter's error).
      const adapter = (err as { meta?: { driverAdapterError?: unknown } })?.meta?.driverAdapterError;
      if (isUniqueViolation(err) || isUniqueViolation(adapter)) throw new ConflictError('a license key in this file was issued meanwhile; nothing was imported');
      throw err;
    }
    return creates.map((c) => c.id!);
    // The work grows with the file: the default limit (5 s) is sized for one license.
  }, { timeout: importTimeoutMs(rows.length) });
  // The license.imported rows were written by insertImport's statement, not emitted: chain and publish them.
  void sealerOf(ctx.app).seal(tenantId);
  return ids;
}

/** How long an import's transaction may take: 10 s, and 5 ms more per row (60 s for the largest file). */
export function importTimeoutMs(rows: number): number {
  return 10_000 + rows * 5;
}

/**
 * The new customers, the licenses and their license.imported audit rows in one statement, whatever the
 * number of rows: each table is filled by one INSERT ... SELECT over the rows sent as one JSON parameter
 * (one round trip, not a parameter per cell in chunks, which took seconds per thousand licenses and
 * ran past the transaction limit). Audit rows are written in file order, with the request's actor.
 */
async function insertImport(
  tx: Tx,
  ctx: ServiceContext,
  tenantId: string,
  customers: Prisma.CustomerCreateManyInput[],
  licenses: Prisma.LicenseCreateManyInput[],
  now: Date,
): Promise<void> {
  const actor = actorOf(ctx.actor);
  await tx.$executeRaw`
    WITH customers AS (
      INSERT INTO "Customer" (id, "tenantId", name, email, "createdAt")
      SELECT c.id, c."tenantId", c.name, c.email, ${now}::timestamp(3)
        FROM jsonb_to_recordset(${JSON.stringify(customers)}::jsonb) AS c(id uuid, "tenantId" uuid, name text, email text)
      RETURNING id
    ), licenses AS (
      INSERT INTO "License" (id, "tenantId", "productId", "editionId", "customerId", key, name, state, type, provisioning, "clientType",
        "startsAt", "expiresAt", "maxActivations", "goodwillActivations", seats, "leaseSeconds", "heartbeatSeconds", "inactivityReclaimSeconds",
        "gracePeriodSeconds", "deploymentMode", "allowOffline", "fingerprintMatch", features, meters, entitlements, "allowedVersions", metadata,
        "suspendedAt", "revokedAt", "createdAt", "updatedAt")
      SELECT l.id, l."tenantId", l."productId", l."editionId", l."customerId", l.key, l.name, l.state::"LicenseState", l.type::"LicenseType",
        l.provisioning::"Provisioning", l."clientType"::"ClientType", l."startsAt", l."expiresAt", l."maxActivations", l."goodwillActivations",
        l.seats, l."leaseSeconds", l."heartbeatSeconds", l."inactivityReclaimSeconds", l."gracePeriodSeconds", l."deploymentMode"::"DeploymentMode",
        l."allowOffline", l."fingerprintMatch"::"FingerprintMatch", l.features, l.meters, l.entitlements, l."allowedVersions", l.metadata,
        l."suspendedAt", l."revokedAt", ${now}::timestamp(3), ${now}::timestamp(3)
        FROM jsonb_to_recordset(${JSON.stringify(licenses)}::jsonb) AS l(
          id uuid, "tenantId" uuid, "productId" uuid, "editionId" uuid, "customerId" uuid, key text, name text, state text, type text,
          provisioning text, "clientType" text, "startsAt" timestamp(3), "expiresAt" timestamp(3), "maxActivations" int, "goodwillActivations" int,
          seats int, "leaseSeconds" int, "heartbeatSeconds" int, "inactivityReclaimSeconds" int, "gracePeriodSeconds" int, "deploymentMode" text,
          "allowOffline" boolean, "fingerprintMatch" text, features text[], meters jsonb, entitlements jsonb, "allowedVersions" text, metadata jsonb,
          "suspendedAt" timestamp(3), "revokedAt" timestamp(3))
       ORDER BY (l.metadata->>'importedAtLine')::int
      RETURNING id, "customerId", state, metadata
    )
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", "customerId", payload, "requestId", "occurredAt")
    SELECT ${tenantId}::uuid, 'license.imported', ${actor.type}, ${actor.id}, 'License', l.id::text, l.id, l."customerId",
      jsonb_build_object('line', (l.metadata->>'importedAtLine')::int, 'state', l.state), ${ctx.requestId}, ${now}::timestamp(3)
      FROM licenses l
     ORDER BY (l.metadata->>'importedAtLine')::int`;
}
