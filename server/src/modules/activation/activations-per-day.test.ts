import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { listen, subscribe, wsClient, type WsClient } from '../../../test/ws.ts';
import { sealerOf } from '../audit/chain.ts';
import { activateDevice, issue } from './fixtures.ts';

let s: TestServer;
let token: string;
let tenantId: string;
let url: string;
const sockets: WsClient[] = [];
beforeAll(async () => {
  s = await startTestServer();
  url = await listen(s.app);
  ({ token, id: tenantId } = await s.tenant());
});
afterAll(async () => {
  await Promise.all(sockets.map((c) => c.dispose()));
  await s.close();
});

const PER_DAY = `query($days: Int, $timeZone: String) {
  activationsPerDay(days: $days, timeZone: $timeZone) {
    __typename
    ... on ActivationsPerDay { timeZone cursor days { date activations } }
    ... on ValidationError { fields { path message } }
    ... on Error { message }
  }
}`;

const perDay = async (variables: Record<string, unknown>, as = token) => ok(await s.gql(PER_DAY, variables, { token: as })).activationsPerDay;

/** The calendar day of `at` in `timeZone`, as YYYY-MM-DD. */
const formats = new Map<string, Intl.DateTimeFormat>();
const localDay = (at: Date, timeZone: string) => {
  let f = formats.get(timeZone);
  if (!f) formats.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  return f.format(at);
};

describe('activationsPerDay', () => {
  const times: Date[] = [];

  beforeAll(async () => {
    const l = await issue(s, token, { maxActivations: null });
    // History, set-based: 1,230 released activations over the last six days (0:30, 4:30, ... UTC, so
    // that some fall on another calendar day in New York or Tokyo), and one 20 days back, out of range.
    const rows = await s.db.sql.query<{ at: string }>(
      `INSERT INTO "Activation" (id, "tenantId", "licenseId", fingerprint, status, "activatedAt", "releasedAt", "productId", "customerId")
       SELECT gen_random_uuid(), l."tenantId", l.id, 'hist-' || g, 'RELEASED'::"ActivationStatus",
              date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => 1 + g % 6) + make_interval(hours => (g % 6) * 4, mins => 30),
              now() AT TIME ZONE 'UTC', l."productId", l."customerId"
         FROM "License" l, generate_series(0, 1229) g WHERE l.id = $1::uuid
       UNION ALL
       SELECT gen_random_uuid(), l."tenantId", l.id, 'old', 'RELEASED'::"ActivationStatus", (now() AT TIME ZONE 'UTC') - interval '20 days', now() AT TIME ZONE 'UTC', l."productId", l."customerId"
         FROM "License" l WHERE l.id = $1::uuid
       RETURNING to_char("activatedAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at`,
      [l.id],
    );
    times.push(...rows.map((r) => new Date(r.at)));
    // Today, through the API.
    for (let i = 0; i < 5; i++) {
      const r = await activateDevice(s, { key: l.key, fingerprint: `today-${i}` });
      expect(r).toMatchObject({ __typename: 'ActivateSuccess' });
      times.push(new Date(r.activation.activatedAt));
    }
    // Counts are exact up to the feed's cursor: every event sealed, they count everything.
    await sealerOf(s.app.deps).seal(tenantId);
  });

  it('counts every activation of each day exactly, in the time zone asked for', async () => {
    expect(times.length).toBeGreaterThan(1_000);
    for (const timeZone of ['UTC', 'America/New_York', 'Asia/Tokyo']) {
      const r = await perDay({ days: 14, timeZone });
      expect(r).toMatchObject({ __typename: 'ActivationsPerDay', timeZone });
      expect(r.days).toHaveLength(14);
      expect(r.days.at(-1).date).toBe(localDay(new Date(), timeZone));
      const local = times.map((t) => localDay(t, timeZone));
      const expected = r.days.map((d: { date: string }) => ({ date: d.date, activations: local.filter((day) => day === d.date).length }));
      expect(r.days).toEqual(expected);
      // All but the one 20 days back, whatever the zone.
      expect(r.days.reduce((n: number, d: { activations: number }) => n + d.activations, 0)).toBe(1_235);
    }
    const utc = await perDay({ days: 14 });
    expect(utc.timeZone).toBe('UTC');
    expect(utc.days.at(-1).activations).toBe(5);
    expect(utc.days.slice(-7, -1).map((d: { activations: number }) => d.activations)).toEqual([205, 205, 205, 205, 205, 205]);
    const month = await perDay({ days: 30 });
    expect(month.days.reduce((n: number, d: { activations: number }) => n + d.activations, 0)).toBe(1_236);
  });

  it('gives the feed cursor the counts are exact up to: the counts and the feed after it count each activation once', async () => {
    const r = await perDay({});
    const head = ok(await s.gql(`{ activityCursor }`, {}, { token })).activityCursor;
    expect(r.cursor).toBe(head);
    // Activations going on while the counts are read (some of their events not sealed yet).
    const l = await issue(s, token, { maxActivations: null });
    const burst = Promise.all(Array.from({ length: 30 }, (_, i) => activateDevice(s, { key: l.key, fingerprint: `burst-${i}` })));
    const during = await perDay({});
    await burst;
    const counted = during.days.at(-1).activations;
    const socket = wsClient(url, token);
    sockets.push(socket);
    const feed = subscribe<{ subjectId: string }>(
      socket.client,
      `subscription($after: ID) { activity(after: $after, filter: { types: ["activation.created"] }) { subjectId } }`,
      { after: during.cursor },
      (d) => d.activity,
    );
    const items = await feed.until((xs) => counted + xs.length >= 35);
    expect(counted + items.length).toBe(35);
    expect(new Set(items.map((e) => e.subjectId)).size).toBe(items.length);
    await sealerOf(s.app.deps).seal(tenantId);
    expect((await perDay({})).days.at(-1).activations).toBe(35);
  });

  it('reads for READ_ONLY, counts nothing of another tenant, and refuses bad input with typed errors', async () => {
    const ro = ok(await s.gql(`mutation { createApiToken(input: { name: "wall", role: READ_ONLY }) { ... on CreateApiTokenPayload { token } } }`, {}, { token })).createApiToken.token;
    expect((await perDay({ days: 7 }, ro)).days.at(-1).activations).toBe(35);
    const other = await s.tenant();
    const theirs = await perDay({ days: 30 }, other.token);
    expect(theirs.days.every((d: { activations: number }) => d.activations === 0)).toBe(true);
    for (const days of [0, -1, 367]) {
      expect(await perDay({ days })).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'days' }] });
    }
    for (const timeZone of ['Mars/Olympus_Mons', "UTC'; --", '']) {
      expect(await perDay({ timeZone })).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'timeZone' }] });
    }
    const anonymous = await s.gql(PER_DAY, {});
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(tenantId).toBeTruthy();
  });
});
