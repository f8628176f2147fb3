import { AsyncLocalStorage } from 'node:async_hooks';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { MAX_IMPORT_ROWS, parseCsv } from './import.ts';
import { generateKey } from './keys.ts';

let s: TestServer;
let token: string;
let tenantId: string;

const IMPORT = `mutation($input: ImportLicensesInput!) {
  importLicenses(input: $input) {
    __typename
    ... on ImportLicensesPayload { count licenses { key name status type expiresAt maxActivations features customer { name email } edition { code } } }
    ... on ImportError { message rows { line field message } }
    ... on ValidationError { fields { path message } }
    ... on Error { message }
  }
}`;

async function importData(format: 'CSV' | 'JSONL', data: string, t = token) {
  return ok(await s.gql(IMPORT, { input: { format, data } }, { token: t })).importLicenses;
}

async function counts() {
  const p = s.db.prisma;
  return { licenses: await p.license.count(), customers: await p.customer.count(), events: await p.auditEvent.count(), tokenKeys: await p.tokenKey.count() };
}

const lines = (r: { rows: { line: number }[] }) => [...new Set(r.rows.map((x) => x.line))];

beforeAll(async () => {
  s = await startTestServer();
  ({ token, id: tenantId } = await s.tenant());
  const g = async (q: string, vars: Record<string, unknown> = {}) => ok(await s.gql(q, vars, { token }));
  const productId = (await g(`mutation { createProduct(input: { name: "Desk", code: "desk" }) { ... on Product { id } } }`)).createProduct.id;
  for (const code of ['export', 'cloud-sync']) {
    await g(`mutation($input: CreateFeatureInput!) { createFeature(input: $input) { __typename } }`, { input: { productId, code, name: code } });
  }
  for (const [code, terms] of [
    ['std', { licenseType: 'PERPETUAL', maxActivations: 2 }],
    ['sub', { licenseType: 'SUBSCRIPTION', validityDays: 365, maxActivations: 3 }],
    ['float', { licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 4 }],
  ] as const) {
    const r = await g(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename } }`, { input: { productId, name: code, code, ...terms } });
    expect(r.createEdition.__typename).toBe('Edition');
  }
  await g(`mutation { createCustomer(input: { name: "Existing Co", email: "buyer@existing.example" }) { __typename } }`);
});
afterAll(() => s.close());

describe('parseCsv', () => {
  it('handles quotes, escaped quotes, CRLF, embedded newlines and blank lines, with first-line numbers', () => {
    const rows = parseCsv('a,b\r\n"x, y","say ""hi"""\n\n"multi\nline",z\nlast,');
    expect(rows).toEqual([
      { line: 1, cells: ['a', 'b'] },
      { line: 2, cells: ['x, y', 'say "hi"'] },
      { line: 4, cells: ['multi\nline', 'z'] },
      { line: 6, cells: ['last', ''] },
    ]);
  });
});

describe('importLicenses', () => {
  it('a good CSV creates licenses and customers, all at once', async () => {
    const key = generateKey('LIC');
    const past = new Date(Date.now() - 10 * 86_400_000).toISOString();
    const future = new Date(Date.now() + 100 * 86_400_000).toISOString();
    const csv = [
      'product,edition,key,name,customer,customerEmail,type,status,expiresAt,maxActivations,features',
      `desk,std,${key.toLowerCase()},"Workstation, main",New Corp,Admin@NewCorp.example,,,,5,export;cloud-sync`,
      'desk,sub,,"Annual ""gold""",,buyer@existing.example,,SUSPENDED,' + future + ',,',
      `desk,sub,,Old one,New Corp,admin@newcorp.example,,,${past},,`,
      'desk,float,,Lab,Name Only Ltd,,,,,,',
      'desk,sub,,Bought outright,,,PERPETUAL,,,,',
    ].join('\n');
    const before = await counts();
    const r = await importData('CSV', csv);
    expect(r.__typename, JSON.stringify(r)).toBe('ImportLicensesPayload');
    expect(r.count).toBe(5);
    const byName = Object.fromEntries(r.licenses.map((l: { name: string }) => [l.name, l]));
    expect(byName['Workstation, main']).toMatchObject({
      key,
      status: 'ACTIVE',
      type: 'PERPETUAL',
      expiresAt: null,
      maxActivations: 5,
      features: ['export', 'cloud-sync'],
      customer: { name: 'New Corp', email: 'admin@newcorp.example' },
    });
    expect(byName['Annual "gold"']).toMatchObject({ status: 'SUSPENDED', type: 'SUBSCRIPTION', expiresAt: future, customer: { name: 'Existing Co' } });
    expect(byName['Old one']).toMatchObject({ status: 'EXPIRED', customer: { email: 'admin@newcorp.example' } });
    expect(byName.Lab).toMatchObject({ type: 'FLOATING', customer: { name: 'Name Only Ltd', email: null } });
    expect(byName['Bought outright']).toMatchObject({ type: 'PERPETUAL', expiresAt: null, customer: null });
    const after = await counts();
    // New Corp once (same email twice), Name Only Ltd; Existing Co reused.
    expect(after.customers - before.customers).toBe(2);
    expect(after.licenses - before.licenses).toBe(5);
    expect(await s.db.prisma.auditEvent.count({ where: { tenantId, type: 'license.imported' } })).toBe(5);
  });

  it('a customer given by name only is the tenant\'s customer of that name; a name two customers share must come with an email', async () => {
    const other = await s.tenant();
    await ok(await s.gql(`mutation { createCustomer(input: { name: "Existing Co" }) { __typename } }`, {}, { token: other.token }));
    for (let i = 0; i < 2; i++) await ok(await s.gql(`mutation { createCustomer(input: { name: "Twin Ltd" }) { __typename } }`, {}, { token }));
    const before = await counts();
    const twins = await importData('CSV', 'product,edition,name,customer\ndesk,std,by name,Existing Co\ndesk,std,twin,Twin Ltd\n');
    expect(twins.__typename).toBe('ImportError');
    expect(twins.rows).toEqual([{ line: 3, field: 'customer', message: expect.stringMatching(/2 customers are named "Twin Ltd"/) }]);
    expect(await counts()).toEqual(before);

    const r = await importData('CSV', 'product,edition,name,customer\ndesk,std,by name,Existing Co\ndesk,std,again,Existing Co\n');
    expect(r.__typename, JSON.stringify(r)).toBe('ImportLicensesPayload');
    expect(r.licenses.map((l: { customer: unknown }) => l.customer)).toEqual([
      { name: 'Existing Co', email: 'buyer@existing.example' },
      { name: 'Existing Co', email: 'buyer@existing.example' },
    ]);
    const after = await counts();
    expect(after.customers).toBe(before.customers);
    expect(await s.db.prisma.customer.count({ where: { tenantId, name: 'Existing Co' } })).toBe(1);
  });

  it('a customer deleted while an import names it: the import reuses it and the delete is refused, or the import makes it anew', async () => {
    const DELETE = `mutation($id: ID!) { deleteCustomer(input: { customerId: $id }) { __typename } }`;
    for (let round = 0; round < 8; round++) {
      const email = `race${round}@delete.example`;
      const created = ok(await s.gql(`mutation($email: String!) { createCustomer(input: { name: "Racer", email: $email }) { ... on Customer { id } } }`, { email }, { token }));
      const id = created.createCustomer.id as string;
      const [imported, deleted] = await Promise.all([
        importData('CSV', `product,edition,name,customerEmail\ndesk,std,race ${round},${email}\n`),
        s.gql(DELETE, { id }, { token }),
      ]);
      expect(imported.__typename, JSON.stringify(imported)).toBe('ImportLicensesPayload');
      const d = ok(deleted).deleteCustomer.__typename;
      const holders = await s.db.prisma.customer.findMany({ where: { tenantId, email }, include: { _count: { select: { licenses: true } } } });
      // Either way one customer with this email holds the one license: the first if it was kept, a new one if not.
      expect(holders.map((c) => c._count.licenses), `round ${round}: ${d}`).toEqual([1]);
      if (d === 'ConflictError') expect(holders[0]!.id).toBe(decodeGlobalID(id).id);
      else {
        expect(d).toBe('DeleteCustomerPayload');
        expect(holders[0]!.id).not.toBe(decodeGlobalID(id).id);
      }
    }
  });

  it('dates are ISO 8601 calendar dates: a day count, a US date or 30 February fails its line instead of becoming another date', async () => {
    const before = await counts();
    // new Date() read these as the year 365, 1 January 2001, 2 March 2027 and the server's local midnight of a guessed order.
    for (const cell of ['365', '1', '2027-02-30', '12/31/2027', 'Dec 31 2027', '2027-13-01', '2027-12-31T25:00:00Z']) {
      const r = await importData('CSV', `product,edition,expiresAt\ndesk,sub,${cell}\n`);
      expect(r.__typename, cell).toBe('ImportError');
      expect(r.rows, cell).toEqual([{ line: 2, field: 'expiresAt', message: expect.stringMatching(/^expiresAt: .*ISO 8601/) }]);
    }
    const epoch = await importData('JSONL', JSON.stringify({ product: 'desk', edition: 'sub', startsAt: 1_800_000_000 }));
    expect(epoch.__typename).toBe('ImportError');
    expect(epoch.rows[0].message).toMatch(/^startsAt: .*ISO 8601/);
    expect(await counts()).toEqual(before);

    const r = await importData(
      'CSV',
      ['product,edition,name,expiresAt', 'desk,sub,day,2031-02-28', 'desk,sub,no offset,2031-03-01 12:30', 'desk,sub,offset,2031-03-01T12:30:00+02:00'].join('\n'),
    );
    expect(r.__typename, JSON.stringify(r)).toBe('ImportLicensesPayload');
    expect(Object.fromEntries(r.licenses.map((l: { name: string; expiresAt: string }) => [l.name, l.expiresAt]))).toEqual({
      day: '2031-02-28T00:00:00.000Z',
      'no offset': '2031-03-01T12:30:00.000Z',
      offset: '2031-03-01T10:30:00.000Z',
    });
  });

  it('a good JSONL file imports, blank lines allowed', async () => {
    const data = [
      JSON.stringify({ product: 'desk', edition: 'sub', name: 'jsonl-1', customerEmail: 'jsonl@example.com', customer: 'Jsonl Inc' }),
      '',
      JSON.stringify({ product: 'desk', edition: 'std', name: 'jsonl-2', maxActivations: 7, features: ['export'] }),
    ].join('\n');
    const r = await importData('JSONL', data);
    expect(r.__typename, JSON.stringify(r)).toBe('ImportLicensesPayload');
    expect(r.count).toBe(2);
    expect(r.licenses.find((l: { name: string }) => l.name === 'jsonl-2')).toMatchObject({ maxActivations: 7, features: ['export'] });
  });

  it('rejects a CSV with bad rows as a whole, listing every bad row by line', async () => {
    const existing = (await s.db.prisma.license.findFirstOrThrow({ where: { tenantId } })).key;
    const dupKey = generateKey('LIC');
    const badCheck = `${dupKey.slice(0, -1)}${dupKey.endsWith('0') ? '1' : '0'}`;
    const csv = [
      'product,edition,key,name,customerEmail,expiresAt,maxActivations,features',
      `desk,std,${dupKey},good row,,,,`, // 2
      'nope,std,,unknown product,,,,', // 3
      'desk,gold,,unknown edition,,,,', // 4
      `desk,std,${badCheck},bad check group,,,,`, // 5
      'desk,std,,unknown feature,,,,export;teleport', // 6
      'desk,std,,bad email,not-an-email,,,', // 7
      'desk,std,,negative,,,-4,', // 8
      `desk,std,${dupKey},same key as line 2,,,,`, // 9
      `desk,std,${existing},taken key,,,,`, // 10
      'desk,sub,,bad date,,someday,,', // 11
      'desk,std,,too,many,columns,here,x,y', // 12
      'desk,std,,perpetual with expiry,,2030-01-01,,', // 13
      `desk,std,,${'n'.repeat(10_240)},,,,`, // 14
      'desk,std,,fine again,,,,', // 15
    ].join('\n');
    const before = await counts();
    const r = await importData('CSV', csv);
    expect(r.__typename).toBe('ImportError');
    // Column-count problems are reported first, on their own.
    expect(lines(r)).toEqual([12]);
    const fixed = csv.replace('desk,std,,too,many,columns,here,x,y', 'desk,std,,twelve,,,,');
    const r2 = await importData('CSV', fixed);
    expect(r2.__typename).toBe('ImportError');
    expect(lines(r2)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]);
    expect(r2.rows.find((x: { line: number }) => x.line === 9).message).toMatch(/line 2/);
    expect(r2.rows.find((x: { line: number }) => x.line === 6).message).toMatch(/teleport/);
    expect(await counts()).toEqual(before);
  });

  it('a JSONL escape PostgreSQL cannot store (\\u0000, a lone surrogate) fails its line, not the request', async () => {
    const before = await counts();
    const data = [
      JSON.stringify({ product: 'desk', edition: 'std', name: 'fine' }),
      '{"product":"desk","edition":"std","name":"half \\ud800 a pair"}',
      '{"product":"desk","edition":"std","customer":"nul \\u0000 here"}',
    ].join('\n');
    const r = await s.gql(IMPORT, { input: { format: 'JSONL', data } }, { token });
    expect(r.errors).toBeUndefined();
    expect(r.data.importLicenses.__typename).toBe('ImportError');
    expect(r.data.importLicenses.rows).toEqual([
      { line: 2, field: 'name', message: expect.stringMatching(/^name: .*surrogate/) },
      { line: 3, field: 'customer', message: expect.stringMatching(/^customer: .*NUL/) },
    ]);
    const csv = await s.gql(IMPORT, { input: { format: 'CSV', data: 'product,edition,name\ndesk,std,ok\ndesk,std,nul \u0000 here\n' } }, { token });
    expect(csv.errors).toBeUndefined();
    expect(csv.data.importLicenses.rows).toEqual([{ line: 3, field: 'name', message: expect.stringMatching(/^name: .*NUL/) }]);
    expect(await counts()).toEqual(before);
  });

  it('accepts a byte order mark (spreadsheet exports) in CSV and JSONL', async () => {
    const csv = await importData('CSV', '\uFEFFproduct,edition,name\ndesk,std,bom-csv');
    expect(csv.__typename, JSON.stringify(csv)).toBe('ImportLicensesPayload');
    const jsonl = await importData('JSONL', `\uFEFF${JSON.stringify({ product: 'desk', edition: 'std', name: 'bom-jsonl' })}`);
    expect(jsonl.__typename, JSON.stringify(jsonl)).toBe('ImportLicensesPayload');
  });

  it('a misspelt JSONL field fails its line instead of being ignored', async () => {
    const before = await counts();
    const r = await importData('JSONL', [JSON.stringify({ product: 'desk', edition: 'std' }), JSON.stringify({ product: 'desk', edition: 'std', maxActivation: 9 })].join('\n'));
    expect(r.__typename).toBe('ImportError');
    expect(lines(r)).toEqual([2]);
    expect(r.rows[0].message).toMatch(/maxActivation/);
    expect(await counts()).toEqual(before);
  });

  it('rejects bad JSONL lines by line number, writing nothing', async () => {
    const data = [
      JSON.stringify({ product: 'desk', edition: 'std' }),
      '{not json',
      '',
      '[1,2]',
      JSON.stringify({ product: 'desk', edition: 'std', maxActivations: 'many' }),
    ].join('\n');
    const before = await counts();
    const r = await importData('JSONL', data);
    expect(r.__typename).toBe('ImportError');
    expect(lines(r)).toEqual([2, 4]);
    const r2 = await importData('JSONL', data.replace('{not json', '{}').replace('[1,2]', 'null'));
    expect(r2.__typename).toBe('ImportError');
    expect(lines(r2)).toEqual([4]);
    const r3 = await importData('JSONL', data.replace('{not json', '{}').replace('[1,2]', '{"product":"desk","edition":"std"}'));
    expect(r3.__typename).toBe('ImportError');
    expect(lines(r3)).toEqual([2, 5]);
    expect(await counts()).toEqual(before);
  });

  it('refuses terms that createLicense would refuse (zero caps, goodwill without a cap, seats on NAMED)', async () => {
    const before = await counts();
    const csv = [
      'product,edition,name,maxActivations,goodwillActivations,seats',
      'desk,std,zero cap,0,,',
      'desk,float,zero seats,,,0',
      'desk,std,seats on named,,,3',
      'desk,float,goodwill without cap,,2,',
      'desk,std,ok,1,1,',
    ].join('\n');
    const r = await importData('CSV', csv);
    expect(r.__typename, JSON.stringify(r)).toBe('ImportError');
    expect(lines(r)).toEqual([2, 3, 4, 5]);
    expect(await counts()).toEqual(before);
  });

  it('empty files, unknown columns, oversized data and wrong roles are refused', async () => {
    const before = await counts();
    for (const data of ['', '\n\n', 'product,edition\n']) {
      const r = await importData('CSV', data);
      expect(r.__typename, JSON.stringify(data)).toBe('ValidationError');
      expect(r.fields[0].path).toBe('data');
    }
    const unknown = await importData('CSV', 'product,edition,password\ndesk,std,x');
    expect(unknown.__typename).toBe('ImportError');
    expect(unknown.rows).toEqual([{ line: 1, field: 'password', message: expect.stringMatching(/password/) }]);
    const huge = await importData('JSONL', `${JSON.stringify({ product: 'desk', edition: 'std', name: 'x'.repeat(6 * 1024 * 1024) })}`);
    expect(huge.__typename).toBe('ValidationError');

    const other = await s.tenant();
    const foreign = await importData('CSV', 'product,edition\ndesk,std', other.token);
    expect(foreign.__typename).toBe('ImportError');
    expect(foreign.rows[0]).toMatchObject({ line: 2, message: expect.stringMatching(/no product/) });

    const support = ok(await s.gql(`mutation { createApiToken(input: { name: "s", role: SUPPORT }) { ... on CreateApiTokenPayload { token } } }`, {}, { token }));
    const denied = await s.gql(IMPORT, { input: { format: 'CSV', data: 'product,edition\ndesk,std' } }, { token: support.createApiToken.token });
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await s.gql(IMPORT, { input: { format: 'CSV', data: 'product,edition\ndesk,std' } });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const after = await counts();
    expect(after.licenses).toBe(before.licenses);
    expect(after.customers).toBe(before.customers);
  });

  it('a quoted field never closed, a repeated column or a number that is not a plain integer fails the file, writing nothing', async () => {
    const before = await counts();
    // Without its closing quote, the rest of the file would be read as one name and one license imported for two.
    const open = await importData('CSV', 'product,edition,name\ndesk,std,ok\ndesk,std,"Acme, Inc\ndesk,std,second\n');
    expect(open.__typename).toBe('ImportError');
    expect(open.rows).toEqual([{ line: 3, field: null, message: expect.stringMatching(/quote/) }]);
    const twice = await importData('CSV', 'product,edition,name,name\ndesk,std,first,second\n');
    expect(twice.__typename).toBe('ImportError');
    expect(twice.rows).toEqual([{ line: 1, field: null, message: expect.stringMatching(/more than once: name$/) }]);
    for (const cell of ['0x10', '1e3', '5.5', 'Infinity', '12abc']) {
      const r = await importData('CSV', `product,edition,maxActivations\ndesk,std,${cell}\n`);
      expect(r.__typename, cell).toBe('ImportError');
      expect(r.rows[0], cell).toMatchObject({ line: 2, message: expect.stringMatching(/^maxActivations/) });
    }
    expect(await counts()).toEqual(before);
    const plain = await importData('CSV', 'product,edition,maxActivations,name\ndesk,std, 7 ,plain int\n');
    expect(plain).toMatchObject({ __typename: 'ImportLicensesPayload', licenses: [{ name: 'plain int', maxActivations: 7 }] });
  });

  it('concurrent imports of one key: one file wins, the other is refused as a whole with a typed error', async () => {
    const key = generateKey('LIC');
    const before = await counts();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => s.gql(IMPORT, { input: { format: 'CSV', data: `product,edition,key,name\ndesk,std,,race-${i}-a\ndesk,std,${key},race-${i}` } }, { token })),
    );
    const kinds = results.map((r) => ok(r).importLicenses.__typename);
    expect(kinds.filter((k) => k === 'ImportLicensesPayload')).toHaveLength(1);
    for (const k of kinds) expect(['ImportLicensesPayload', 'ImportError', 'ConflictError']).toContain(k);
    expect(await s.db.prisma.license.count({ where: { key } })).toBe(1);
    expect((await counts()).licenses - before.licenses).toBe(2);
  });
});

/** What zod says by itself: the user is never shown it. */
const RAW_ZOD = /Invalid input|Invalid option|Unrecognized key|Too (big|small)|expected \w+, received|^: /;

describe('a malformed file: a typed error naming the line and the field, in words, and nothing imported', () => {
  type Problem = { line: number; field: string | null; message: string | RegExp };
  const row = (line: number, field: string | null, message: string | RegExp) => ({ line, field, message });
  const cases: [string, 'CSV' | 'JSONL', string, Problem[]][] = [
    // Wrong types (JSON lines carry types; a CSV cell is text).
    ['a number for text', 'JSONL', '{"product":5,"edition":"std"}', [row(1, 'product', 'product: must be text, not a number (5)')]],
    ['an object for text', 'JSONL', '{"product":"desk","edition":"std","name":{"a":1}}', [row(1, 'name', 'name: must be text, not an object')]],
    ['text for a number', 'JSONL', '{"product":"desk","edition":"std","maxActivations":"many"}', [row(1, 'maxActivations', 'maxActivations: must be a whole number, not text ("many")')]],
    ['a boolean for a number', 'JSONL', '{"product":"desk","edition":"std","seats":true}', [row(1, 'seats', 'seats: must be a whole number, not true')]],
    ['a number in a CSV number column', 'CSV', 'product,edition,maxActivations\ndesk,std,5.5', [row(2, 'maxActivations', 'maxActivations: must be a whole number, not text ("5.5")')]],
    ['a number for a list', 'JSONL', '{"product":"desk","edition":"std","features":5}', [row(1, 'features', /^features: must be a list of feature codes.*, not a number \(5\)$/)]],
    ['a number in a list of text', 'JSONL', '{"product":"desk","edition":"std","features":["export",1]}', [row(1, 'features', 'features: entry 2 must be text, not a number (1)')]],
    ['an empty entry in a list', 'JSONL', '{"product":"desk","edition":"std","features":[""]}', [row(1, 'features', 'features: entry 1 must not be empty')]],
    ['an entitlement without its limit', 'JSONL', '{"product":"desk","edition":"std","entitlements":[{"feature":"export"}]}', [row(1, 'entitlements', 'entitlements: entry 1, limit is required')]],
    ['an entitlement limit that is not a number', 'CSV', 'product,edition,entitlements\ndesk,std,export=lots', [row(2, 'entitlements', 'entitlements: entry 1, limit must be a whole number, not text ("lots")')]],
    ['a date that is not a date', 'CSV', 'product,edition,expiresAt\ndesk,sub,next year', [row(2, 'expiresAt', /^expiresAt: is not an ISO 8601 date/)]],
    ['a date given as a number', 'JSONL', '{"product":"desk","edition":"sub","expiresAt":1800000000}', [row(1, 'expiresAt', /^expiresAt: is not an ISO 8601 date/)]],
    // Values out of their set, or too long.
    ['an unknown status', 'CSV', 'product,edition,status\ndesk,std,bogus', [row(2, 'status', 'status: must be one of ACTIVE, SUSPENDED or REVOKED, not "bogus"')]],
    ['a license type in lower case', 'JSONL', '{"product":"desk","edition":"std","type":"perpetual"}', [
      row(1, 'type', 'type: must be one of PERPETUAL, SUBSCRIPTION, TRIAL, FLOATING, NODE_LOCKED or SITE, not "perpetual"'),
    ]],
    ['a code too long', 'CSV', `product,edition\n${'p'.repeat(65)},std`, [row(2, 'product', 'product: must be at most 64 characters')]],
    // Fields and columns.
    ['required fields absent', 'JSONL', '{"name":"no codes"}', [row(1, 'product', 'product: is required'), row(1, 'edition', 'edition: is required')]],
    ['a misspelt field', 'JSONL', '{"product":"desk","edition":"std","maxActivation":3}', [row(1, 'maxActivation', /^maxActivation: is not a license field \(did you mean maxActivations\?\)/)]],
    ['required columns absent', 'CSV', 'name,customer\nno codes,Acme', [row(1, 'product', 'product: the column is missing (product and edition are required)'), row(1, 'edition', 'edition: the column is missing (product and edition are required)')]],
    ['a misspelt column', 'CSV', 'product,edition,Expires\ndesk,std,2030-01-01', [row(1, 'Expires', /^Expires: is not a license column \(did you mean expiresAt\?\)/)]],
    ['a column without a name', 'CSV', 'product,,edition\ndesk,,std', [row(1, null, 'column 2 has no name')]],
    ['semicolons for commas', 'CSV', 'product;edition;name\ndesk;std;x', [row(1, null, 'columns must be separated by commas (this header row uses ";")')]],
    ['tabs for commas', 'CSV', 'product\tedition\ndesk\tstd', [row(1, null, 'columns must be separated by commas (this header row uses tabs)')]],
    ['too many cells', 'CSV', 'product,edition\ndesk,std,extra', [row(2, null, 'expected 2 columns, found 3')]],
    // Lines that are not what the format says.
    ['a line that is not JSON', 'JSONL', '{"product":"desk","edition":"std"}\n{"product":"desk",', [row(2, null, 'not valid JSON')]],
    ['a line that is not an object', 'JSONL', '{"product":"desk","edition":"std"}\n"desk"', [row(2, null, 'must be a JSON object, not text ("desk")')]],
    ['a character the file could not be read with', 'CSV', 'product,edition,customer\ndesk,std,Soci\uFFFDt\uFFFD', [
      row(2, 'customer', /^customer: holds "\uFFFD", a character that could not be read: save the file as UTF-8/),
    ]],
  ];

  for (const [what, format, data, expected] of cases) {
    it(`${format}, ${what}`, async () => {
      const before = await counts();
      const r = await importData(format, data);
      expect(r.__typename, JSON.stringify(r)).toBe('ImportError');
      expect(r.rows).toEqual(expected.map((p) => ({ ...p, message: typeof p.message === 'string' ? p.message : expect.stringMatching(p.message) })));
      for (const p of r.rows) expect(p.message).not.toMatch(RAW_ZOD);
      const lineCount = new Set(expected.map((p) => p.line)).size;
      expect(r.message).toBe(
        `Nothing was imported: ${expected.length} problem${expected.length === 1 ? '' : 's'} on ${lineCount === 1 ? `line ${expected[0]!.line}` : `${lineCount} lines`}.`,
      );
      expect(await counts()).toEqual(before);
    });
  }

  it('counts problems and lines apart: many problems over a few lines', async () => {
    const r = await importData('JSONL', ['{}', '{"product":"desk","edition":"std"}', '{"product":1,"edition":2}'].join('\n'));
    expect(r.__typename).toBe('ImportError');
    expect(r.message).toBe('Nothing was imported: 4 problems on 2 lines.');
    expect(r.rows.map((p: { line: number; field: string }) => [p.line, p.field])).toEqual([
      [1, 'product'],
      [1, 'edition'],
      [3, 'product'],
      [3, 'edition'],
    ]);
  });

  const whole: [string, 'CSV' | 'JSONL', string, string, string | RegExp][] = [
    ['empty', 'CSV', '', 'data', 'is empty'],
    ['only blank space', 'CSV', ' \n \t\n', 'data', 'is empty'],
    ['empty JSON lines', 'JSONL', '\n\n', 'data', 'is empty'],
    ['a header row and nothing else', 'CSV', 'product,edition\n', 'data', 'has a header row but no licenses'],
    ['JSON lines given as CSV', 'CSV', '{"product":"desk","edition":"std"}', 'format', 'is CSV, but the contents are JSON: choose JSON lines'],
    ['CSV given as JSON lines', 'JSONL', 'product,edition\ndesk,std', 'format', 'is JSON lines, but the contents look like CSV with a header row: choose CSV'],
    ['one JSON array', 'JSONL', '[{"product":"desk","edition":"std"}]', 'data', 'is one JSON array: JSON lines needs one license object per line, with no [ ] around them'],
    ['a JSON array over many lines', 'JSONL', '[\n  {"product":"desk","edition":"std"},\n  {"product":"desk","edition":"std"}\n]', 'data', 'is one JSON array: JSON lines needs one license object per line, with no [ ] around them'],
    ['a spreadsheet', 'CSV', 'PK\u0003\u0004\u0014\u0000\u0006\u0000\u0008\u0000\u0000\u0000!\u0000', 'data', 'is not a text file (a spreadsheet or a PDF?): export it as CSV (UTF-8) or JSON lines'],
    ['a PDF', 'CSV', '%PDF-1.7\n%\uFFFD\uFFFD\uFFFD\uFFFD\n1 0 obj', 'data', 'is not a text file (a spreadsheet or a PDF?): export it as CSV (UTF-8) or JSON lines'],
    ['a file over 5 MB', 'JSONL', JSON.stringify({ product: 'desk', edition: 'std', name: 'x'.repeat(6 * 1024 * 1024) }), 'data', /^is 6\.0 MB; at most 5 MB can be imported at once: split it into smaller files$/],
    [`more than ${MAX_IMPORT_ROWS} rows`, 'CSV', ['product,edition', ...Array.from({ length: MAX_IMPORT_ROWS + 1 }, () => 'desk,std')].join('\n'), 'data',
      `has ${MAX_IMPORT_ROWS + 1} licenses; at most ${MAX_IMPORT_ROWS} can be imported at once: split it into smaller files`],
  ];
  for (const [what, format, data, path, message] of whole) {
    it(`${format}, ${what}: a ValidationError on ${path}`, async () => {
      const before = await counts();
      const r = await importData(format, data);
      expect(r.__typename, JSON.stringify(r).slice(0, 300)).toBe('ValidationError');
      expect(r.fields).toEqual([{ path, message: typeof message === 'string' ? message : expect.stringMatching(message) }]);
      expect(await counts()).toEqual(before);
    });
  }
});

describe(`the largest import allowed (${testDatabaseUrl ? 'postgres' : 'pglite'})`, () => {
  /** A CSV of `n` licenses with keys, 50 new customers (by email) and features; `last` replaces its last row. */
  const file = (n: number, tag: string, last?: string) =>
    [
      'product,edition,key,name,customer,customerEmail,features',
      ...Array.from({ length: n }, (_, i) => `desk,std,${generateKey('LIC')},${tag}-${i},Big ${tag} ${i % 50},big-${i % 50}@${tag}.example,export`),
    ]
      .slice(0, last ? n : n + 1)
      .concat(last ? [last] : [])
      .join('\n');

  it(`${MAX_IMPORT_ROWS} rows import whole, within the transaction limit: licenses, customers and one audit row each, in file order`, async () => {
    const before = await counts();
    const r = await importData('CSV', file(MAX_IMPORT_ROWS, 'whole'));
    expect(r.__typename, JSON.stringify(r).slice(0, 500)).toBe('ImportLicensesPayload');
    expect(r.count).toBe(MAX_IMPORT_ROWS);
    const after = await counts();
    expect(after.licenses - before.licenses).toBe(MAX_IMPORT_ROWS);
    expect(after.customers - before.customers).toBe(50);
    const sample = await s.db.prisma.license.findFirstOrThrow({ where: { tenantId, name: 'whole-9999' }, include: { customer: true } });
    expect(sample).toMatchObject({ state: 'ACTIVE', type: 'PERPETUAL', maxActivations: 2, features: ['export'], customer: { name: 'Big whole 49', email: 'big-49@whole.example' } });
    const ids = (await s.db.prisma.license.findMany({ where: { tenantId, name: { startsWith: 'whole-' } }, select: { id: true } })).map((l) => l.id);
    const events = await s.db.prisma.auditEvent.findMany({ where: { tenantId, type: 'license.imported', licenseId: { in: ids } }, orderBy: { id: 'asc' }, select: { payload: true, actorType: true } });
    expect(events.map((e) => (e.payload as { line: number }).line)).toEqual(Array.from({ length: MAX_IMPORT_ROWS }, (_, i) => i + 2));
    expect(new Set(events.map((e) => e.actorType))).toEqual(new Set(['api_token']));
  }, 300_000);

  it(`a bad row at the end of ${MAX_IMPORT_ROWS} rows imports nothing`, async () => {
    const before = await counts();
    const r = await importData('CSV', file(MAX_IMPORT_ROWS, 'spoilt', 'desk,gold,,last row,,,'));
    expect(r.__typename).toBe('ImportError');
    expect(r.rows).toEqual([{ line: MAX_IMPORT_ROWS + 1, field: 'edition', message: expect.stringMatching(/^edition: product "desk" has no edition "gold"/) }]);
    expect(await counts()).toEqual(before);
  }, 300_000);

  // Counted at the embedded database, as queries.test.ts counts them (dialect-independent): the statements
  // of the import's transaction (the request's others, such as the API token's periodic touch, vary).
  it.skipIf(!!testDatabaseUrl)('issues as many SQL statements for the largest file as for one row', async () => {
    const request = new AsyncLocalStorage<true>();
    const statements: string[] = [];
    const pglite = s.db.pglite!;
    const transaction = pglite.transaction.bind(pglite);
    // Prisma's interactive transactions run their statements on the transaction's handle.
    pglite.transaction = ((fn: (tx: Parameters<Parameters<typeof pglite.transaction>[0]>[0]) => Promise<unknown>) =>
      transaction((tx) => {
        const txQuery = tx.query.bind(tx);
        tx.query = ((sql: string, ...rest: unknown[]) => {
          if (request.getStore()) statements.push(sql);
          return (txQuery as (...a: unknown[]) => unknown)(sql, ...rest);
        }) as typeof tx.query;
        return fn(tx);
      })) as typeof pglite.transaction;
    try {
      const run = async (n: number, tag: string) => {
        statements.length = 0;
        const r = await request.run(true, () => importData('CSV', file(n, tag)));
        expect(r.count).toBe(n);
        return [...statements];
      };
      const one = await run(1, 'one');
      const all = await run(MAX_IMPORT_ROWS, 'all');
      expect(one.length).toBeGreaterThan(0);
      expect(all.length, JSON.stringify(all.map((x) => x.slice(0, 80)))).toBe(one.length);
    } finally {
      pglite.transaction = transaction;
    }
  }, 300_000);
});

// A second connection holding a row lock: PostgreSQL only (PGlite has one connection, nothing waits there).
describe.skipIf(!testDatabaseUrl)('an import beside a change of its edition (PostgreSQL)', () => {
  it('waits for an archive in progress and refuses the rows of the edition it archived, importing nothing', async () => {
    const edition = await s.db.prisma.edition.findFirstOrThrow({ where: { tenantId, code: 'std' } });
    const before = await counts();
    await s.db.session(async (sql) => {
      await sql.query('BEGIN');
      try {
        await sql.query(`UPDATE "Edition" SET "archivedAt" = now() WHERE id = $1::uuid`, [edition.id]);
        const pending = importData('CSV', 'product,edition,name\ndesk,std,while archiving\n');
        // Until the import waits for the row this transaction holds.
        for (let i = 0; ; i++) {
          const [row] = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))`);
          if (row!.n > 0) break;
          if (i > 200) throw new Error('the import never waited for the edition being archived');
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        await sql.query('COMMIT');
        const r = await pending;
        expect(r.__typename).toBe('ImportError');
        expect(r.rows).toEqual([{ line: 2, field: 'edition', message: expect.stringMatching(/archived/) }]);
      } finally {
        await sql.query('ROLLBACK').catch(() => undefined);
        await sql.query(`UPDATE "Edition" SET "archivedAt" = NULL WHERE id = $1::uuid`, [edition.id]);
      }
    });
    expect(await counts()).toEqual(before);
  });
});
