import type { Activation, License } from '@tessera/db/client';
import { getDatamodel } from '@tessera/db/pothos-types';
import type { AppDeps } from '../../context.ts';
import { sealTenants } from '../audit/chain.ts';
import { batched, inDistinctRounds, inFlightFor, perApp } from '../common/batch.ts';
import { deviceCustomer } from '../common/db.ts';
import { DEFAULT_HEARTBEAT_TOLERANCE_PERCENT } from '../compliance/service.ts';
import type { KeyKind } from '../licenses/keys.ts';

export interface ParsedKey {
  kind: KeyKind;
  key: string;
}

/*
 * The hot client paths (key lookup, heartbeat, new-device activation) as batched single statements on
 * the raw driver. Concurrent calls share one statement (see common/batch.ts): one round trip, one
 * commit, and no ORM query compilation per call. Each statement holds the same invariants as the
 * one-call version: the activation cap on the license row lock, one live activation per device on the
 * unique index, and the audit rows in the same statement (so in the same transaction) as the change.
 */

const datamodel = getDatamodel().datamodel.models;
const dateFields = (model: 'License' | 'Activation') => datamodel[model]!.fields.filter((f) => f.type === 'DateTime').map((f) => f.name);
const LICENSE_DATES = dateFields('License');
const ACTIVATION_DATES = dateFields('Activation');

/** row_to_json gives timestamps (stored in UTC, without zone) as text; Prisma rows carry Dates. */
function withDates<T>(json: Record<string, unknown>, fields: string[]): T {
  for (const f of fields) if (typeof json[f] === 'string') json[f] = new Date(`${json[f]}Z`);
  return json as T;
}

export const asLicense = (json: Record<string, unknown>) => withDates<License>(json, LICENSE_DATES);
export const asActivation = (json: Record<string, unknown>) => withDates<Activation>(json, ACTIVATION_DATES);

/** A JS Date as a `timestamp` parameter (UTC wall time; the zone suffix is ignored by the cast). */
const ts = (d: Date) => d.toISOString();

// ---------------------------------------------------------------------------------------------
// Lookup by key

export interface LookupItem {
  key: ParsedKey;
  fingerprint: string | null;
  /**
   * An activation's lookup: also tell whether this fingerprint holds a live activation of another
   * license of the same product, and let an unused token key see the device's activation (to reuse it).
   */
  activating?: boolean;
}

export interface Found {
  license: License;
  /** The most recent activation of this license for the exact fingerprint, if any. */
  activation: Activation | null;
  /** The token key of a token-key call; `activationId` is the activation it made (or was bound to). */
  tokenKey: { id: string; usedAt: Date | null; activationId: string | null } | null;
  holdsOtherLicense: boolean;
}

/**
 * From the calls `q` (kind, key, fp): the token key `t` of a TOK key, the license `l` of either kind and
 * `a`, the activation of that license for the fingerprint (if any): the live one, else the latest. Not
 * simply the latest: a device matched by its components takes its new fingerprint onto its older live
 * activation, and a released one made later under that fingerprint must not hide it. Each branch is
 * one index probe (the unique live-device index, then the fingerprint index in time order), and the
 * second runs only when the first finds nothing.
 *
 * A token key answers for its own device only: `a` is the activation it made, or none. A license key
 * (the customer's) answers for any device of its license. Only when `activating` (an SQL boolean) holds
 * does an unused token key see the device's activation, which the activation then reuses and binds it to.
 */
const keyJoins = (activating: string) => `
    LEFT JOIN "TokenKey" t ON q.kind = 'TOK' AND t.key = q.key
    JOIN LATERAL (
      SELECT * FROM "License" WHERE q.kind = 'LIC' AND key = q.key
      UNION ALL
      SELECT * FROM "License" WHERE id = t."licenseId"
    ) l ON true
    LEFT JOIN LATERAL (
      (SELECT * FROM "Activation" x WHERE x."licenseId" = l.id AND x."activeFingerprint" = q.fp)
      UNION ALL
      (SELECT * FROM "Activation" x WHERE x."licenseId" = l.id AND x.fingerprint = q.fp ORDER BY x."activatedAt" DESC LIMIT 1)
      LIMIT 1
    ) a ON t.id IS NULL OR a.id = t."activationId" OR (t."activationId" IS NULL AND ${activating})`;

/**
 * Whether the fingerprint `q.fp` holds a live activation of another license of `l`'s product and
 * customer: the one the activation moves the device from (an upgrade, a renewal as a new license).
 * Another customer's license is never touched: a fingerprint is no proof of owning that license.
 * One probe of the index that allows one such activation (its very expression).
 */
const HOLDS_OTHER = `EXISTS (
  SELECT 1 FROM "Activation" o
   WHERE o."productId" = l."productId" AND ${deviceCustomer('o."customerId"')} = ${deviceCustomer('l."customerId"')}
     AND o."activeFingerprint" = q.fp AND o."licenseId" <> l.id)`;

/**
 * One indexed read per key (with this device's latest activation), whatever the key kind; an unknown
 * key costs the same read as a known one, so response time does not tell whether a key exists.
 */
const LOOKUP = `
  SELECT q.i::int AS i, row_to_json(l) AS license, row_to_json(a) AS activation,
         t.id AS "tokenId", to_json(t."usedAt")#>>'{}' AS "tokenUsedAt",
         t."activationId" AS "tokenActivationId", CASE WHEN q.activating THEN ${HOLDS_OTHER} ELSE false END AS "holdsOther"
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) WITH ORDINALITY AS q(kind, key, fp, activating, i)
    ${keyJoins('q.activating')}`;

interface LookupRow {
  i: number;
  license: Record<string, unknown>;
  activation: Record<string, unknown> | null;
  tokenId: string | null;
  tokenUsedAt: string | null;
  tokenActivationId: string | null;
  holdsOther: boolean;
}

const foundOf = (r: LookupRow): Found => ({
  license: asLicense(r.license),
  activation: r.activation ? asActivation(r.activation) : null,
  tokenKey: r.tokenId ? { id: r.tokenId, usedAt: r.tokenUsedAt ? new Date(`${r.tokenUsedAt}Z`) : null, activationId: r.tokenActivationId } : null,
  holdsOtherLicense: r.holdsOther,
});

export const lookupBatcher = perApp((app: AppDeps) =>
  batched<LookupItem, Found | null>(
    async (items) => {
      const rows = await app.db.sql.query<LookupRow>(LOOKUP, [
        items.map((x) => x.key.kind),
        items.map((x) => x.key.key),
        items.map((x) => x.fingerprint),
        items.map((x) => !!x.activating && x.fingerprint !== null),
      ], 'tessera_lookup_by_key');
      const out: (Found | null)[] = items.map(() => null);
      for (const r of rows) {
        out[r.i - 1] = foundOf(r);
      }
      return out;
    },
    { maxInFlight: inFlightFor(app.db.kind, 'read') },
  ),
);

// ---------------------------------------------------------------------------------------------
// Heartbeat

/** What both writes record of a device call. */
interface DeviceWrite {
  activationId: string;
  tenantId: string;
  licenseId: string;
  customerId: string | null;
  /** The license revision the device holds after this call. */
  revision: number;
  client: { hostname: string | null; platform: string | null; osVersion: string | null; appVersion: string | null };
  requestId: string;
}

export interface HeartbeatWrite extends DeviceWrite {
  /** The `device.heartbeat` event's payload. */
  payload: Record<string, unknown>;
}

/**
 * The two writes of recorded heartbeats, as CTEs: `as` (the ACTIVE activations of the calls in `from`,
 * updated, as the rows they are now) and `s` (their time-series samples). `from` has the client fields
 * hostname, platform, "osVersion", "appVersion", the activation's id in column `id` and the revision the
 * device holds after the call in `revision`.
 */
function heartbeatWrites(o: { from: string; id: string; revision: string; at: string; as: string }): string {
  const { from: q, at } = o;
  return `${o.as} AS (
    UPDATE "Activation" x SET "lastHeartbeatAt" = ${at},
           hostname = COALESCE(${q}.hostname, x.hostname), platform = COALESCE(${q}.platform, x.platform),
           "osVersion" = COALESCE(${q}."osVersion", x."osVersion"), "appVersion" = COALESCE(${q}."appVersion", x."appVersion"),
           "syncedRevision" = GREATEST(x."syncedRevision", ${q}.${o.revision})
      FROM ${q}
     WHERE x.id = ${q}.${o.id} AND x.status = 'ACTIVE'
    RETURNING x.*
  ), s AS (
    INSERT INTO "HeartbeatSample" ("tenantId", "licenseId", "activationId", at, "appVersion", "osVersion", platform)
    SELECT "tenantId", "licenseId", id, ${at}, "appVersion", "osVersion", platform FROM ${o.as}
  )`;
}

/**
 * Records heartbeats: last seen, client details and the revision the device now holds, a sample of
 * the time series and the `device.heartbeat` audit event, for every still-ACTIVE activation of the
 * batch. A released one is not in the answer (null).
 */
const HEARTBEAT = `
  WITH q AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::text[], $11::text[])
      WITH ORDINALITY AS q(id, "tenantId", "licenseId", "customerId", hostname, platform, "osVersion", "appVersion", revision, "requestId", payload, i)
  ), ${heartbeatWrites({ from: 'q', id: 'id', revision: 'revision', at: '$12::timestamp', as: 'a' })}, e AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", "customerId", payload, "requestId", "occurredAt")
    SELECT q."tenantId", 'device.heartbeat', 'client', q."licenseId"::text, 'Activation', q.id::text, q."licenseId", q."customerId",
           q.payload::jsonb, q."requestId", $12::timestamp
      FROM q WHERE q.id IN (SELECT id FROM a)
  )
  SELECT q.i::int AS i, row_to_json(a) AS activation FROM q JOIN a ON a.id = q.id`;

export const heartbeatBatcher = perApp((app: AppDeps) =>
  batched<HeartbeatWrite, { activation: Activation | null; at: Date }>(
    (batch) => inDistinctRounds(batch, (x) => x.activationId, async (items) => {
      const at = new Date();
      const rows = await app.db.sql.query<{ i: number; activation: Record<string, unknown> }>(HEARTBEAT, [
        items.map((x) => x.activationId),
        items.map((x) => x.tenantId),
        items.map((x) => x.licenseId),
        items.map((x) => x.customerId),
        items.map((x) => x.client.hostname),
        items.map((x) => x.client.platform),
        items.map((x) => x.client.osVersion),
        items.map((x) => x.client.appVersion),
        items.map((x) => x.revision),
        items.map((x) => x.requestId),
        items.map((x) => JSON.stringify(x.payload)),
        ts(at),
      ], 'tessera_heartbeat');
      const out = items.map(() => ({ activation: null as Activation | null, at }));
      for (const r of rows) out[r.i - 1] = { activation: asActivation(r.activation), at };
      sealTenants(app, rows.map((r) => items[r.i - 1]!.tenantId));
      return out;
    }),
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);

/** A heartbeat as the client sent it: the lookup and, when nothing stands in the way, the write. */
export interface HeartbeatCall {
  key: ParsedKey;
  fingerprint: string;
  /** The revision the client says it holds (null: the one its activation last synced). */
  revision: number | null;
  client: DeviceWrite['client'];
  requestId: string;
}

export interface HeartbeatOutcome {
  license: License;
  /** This device's latest activation: as written when `recorded`, else as found. */
  activation: Activation | null;
  /** The revision the device held before this call (the activation's, or the one the client sent). */
  knownRevision: number | null;
  /** The heartbeat was recorded (with its sample and audit event) by this statement. */
  recorded: boolean;
  at: Date;
}

/**
 * The common heartbeat in one statement: the key lookup (as LOOKUP), then, for the devices whose call
 * can only succeed (an ACTIVE activation of an ACTIVE license within its dates, in sync, with no version
 * rule that applies), the same writes as HEARTBEAT. A stricter test than the service's rules, on purpose:
 * whatever it leaves out (grace periods, version ranges, a license to re-sync, refusals, two calls of
 * one device in a batch) is not recorded here, and the service settles it from the rows returned, as it
 * would after a plain lookup. So a refused heartbeat changes nothing, and one statement does what two did.
 */
const HEARTBEAT_CALL = `
  WITH q AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
      WITH ORDINALITY AS q(kind, key, fp, revision, hostname, platform, "osVersion", "appVersion", "requestId", i)
  ), f AS (
    SELECT q.*, row_to_json(l) AS license, row_to_json(a) AS activation,
           l.id AS lid, l."tenantId", l."customerId", l.state, l."startsAt", l."expiresAt", l."syncState",
           l."allowedVersions", l.revision AS "licenseRevision", a.id AS aid, a.status AS astatus, a."syncedRevision" AS synced,
           l."heartbeatSeconds", a.offline AS "activationOffline", COALESCE(a."lastHeartbeatAt", a."activatedAt") AS "seenBefore"
      FROM q
    ${keyJoins('false')}
  ), ok AS (
    SELECT DISTINCT ON (aid) * FROM f
     WHERE astatus = 'ACTIVE' AND state = 'ACTIVE' AND "syncState" <> 'PENDING_SYNC'
       AND ("startsAt" IS NULL OR "startsAt" <= $10::timestamp) AND ("expiresAt" IS NULL OR "expiresAt" > $10::timestamp)
       AND (COALESCE("appVersion", '') = '' OR COALESCE("allowedVersions", '') = '')
     ORDER BY aid, i
  ), ${heartbeatWrites({ from: 'ok', id: 'aid', revision: '"licenseRevision"', at: '$10::timestamp', as: 'u' })}, e AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", "customerId", payload, "requestId", "occurredAt")
    SELECT ok."tenantId", 'device.heartbeat', 'client', ok.lid::text, 'Activation', ok.aid::text, ok.lid, ok."customerId",
           jsonb_build_object('appVersion', ok."appVersion", 'osVersion', ok."osVersion", 'revision', ok."licenseRevision",
                              'updateAvailable', COALESCE(ok.revision, ok.synced) < ok."licenseRevision")
             -- Back from a heartbeat timeout (as compliance/service.ts lapsedSql counts one): the compliance counts change.
             -- The tenant's tolerance is read only for a device silent longer than one interval (a nested CASE
             -- runs its subquery only then), not for every heartbeat.
             || CASE WHEN NOT ok."activationOffline" AND ok."heartbeatSeconds" IS NOT NULL
                      AND ok."seenBefore" < $10::timestamp - make_interval(secs => ok."heartbeatSeconds"::float8)
                     THEN CASE WHEN ok."seenBefore" < $10::timestamp - make_interval(secs =>
                            (ok."heartbeatSeconds" * (100 + COALESCE((SELECT cs."heartbeatTolerancePercent" FROM "ComplianceSettings" cs WHERE cs."tenantId" = ok."tenantId"),
                                                                     ${DEFAULT_HEARTBEAT_TOLERANCE_PERCENT})) / 100.0)::float8)
                               THEN '{"resumed": true}'::jsonb ELSE '{}'::jsonb END
                     ELSE '{}'::jsonb END,
           ok."requestId", $10::timestamp
      FROM ok JOIN u ON u.id = ok.aid
  )
  SELECT f.i::int AS i, f.license, COALESCE(row_to_json(u), f.activation) AS activation, f.synced AS "knownRevision", u.id IS NOT NULL AS recorded
    FROM f LEFT JOIN ok ON ok.i = f.i LEFT JOIN u ON u.id = ok.aid`;

export const heartbeatCallBatcher = perApp((app: AppDeps) =>
  batched<HeartbeatCall, HeartbeatOutcome | null>(
    (batch) => inDistinctRounds(batch, deviceOnKey, async (items) => {
      const at = new Date();
      const rows = await app.db.sql.query<{ i: number; license: Record<string, unknown>; activation: Record<string, unknown> | null; knownRevision: number | null; recorded: boolean }>(
        HEARTBEAT_CALL,
        [
          items.map((x) => x.key.kind),
          items.map((x) => x.key.key),
          items.map((x) => x.fingerprint),
          items.map((x) => x.revision),
          items.map((x) => x.client.hostname),
          items.map((x) => x.client.platform),
          items.map((x) => x.client.osVersion),
          items.map((x) => x.client.appVersion),
          items.map((x) => x.requestId),
          ts(at),
        ],
        'tessera_heartbeat_call',
      );
      const out: (HeartbeatOutcome | null)[] = items.map(() => null);
      const recorded: string[] = [];
      for (const r of rows) {
        const item = items[r.i - 1]!;
        const license = asLicense(r.license);
        out[r.i - 1] = {
          license,
          activation: r.activation ? asActivation(r.activation) : null,
          knownRevision: item.revision ?? r.knownRevision,
          recorded: r.recorded,
          at,
        };
        if (r.recorded) recorded.push(license.tenantId);
      }
      sealTenants(app, recorded);
      return out;
    }),
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);

// ---------------------------------------------------------------------------------------------
// New-device activation

export interface ActivationWrite extends DeviceWrite {
  fingerprint: string;
  components: unknown[];
}

export type ActivationOutcome =
  /** Inserted into a free slot (or a goodwill one). */
  | { kind: 'created'; activation: Activation; activationsUsed: number; maxActivations: number | null; goodwill: boolean }
  /** No slot left under the cap. */
  | { kind: 'denied' }
  /** Not decided here (the device went live concurrently): the caller takes the one-call path. */
  | { kind: 'retry' };

/**
 * The cap-checked inserts of new devices, as the CTEs lic, r, ins, n, upd and e over `from`, whose
 * columns are id (the new activation's), "tenantId", "licenseId", "customerId", fingerprint,
 * components (JSON text), hostname, platform, "osVersion", "appVersion", revision, "requestId" and i.
 */
function activationWrites(from: string, at: string): string {
  return `lic AS (
    SELECT l.id, l."activationsUsed" AS used, l."maxActivations" AS max, l."goodwillActivations" AS gw, l.revision AS rev,
           l."productId", l."customerId" AS customer,
           l.state = 'ACTIVE' AND (l."startsAt" IS NULL OR l."startsAt" <= ${at}) AND (l."expiresAt" IS NULL OR l."expiresAt" > ${at}) AS usable
      FROM "License" l WHERE l.id IN (SELECT "licenseId" FROM ${from})
     ORDER BY l.id
       FOR UPDATE
  ), r AS (
    SELECT ${from}.id, ${from}."tenantId", ${from}."licenseId", ${from}."customerId", ${from}.fingerprint, ${from}.components,
           ${from}.hostname, ${from}.platform, ${from}."osVersion", ${from}."appVersion", ${from}.revision, ${from}."requestId", ${from}.i,
           lic.used, lic.max, lic.gw, lic."productId", lic.customer, lic.usable AND lic.rev = ${from}.revision AS usable, row_number() OVER (PARTITION BY ${from}."licenseId" ORDER BY ${from}.i)::int AS rn
      FROM ${from} JOIN lic ON lic.id = ${from}."licenseId"
  ), ins AS (
    INSERT INTO "Activation" (id, "tenantId", "licenseId", fingerprint, "activeFingerprint", components, status, goodwill,
                              hostname, platform, "osVersion", "appVersion", "syncedRevision", "activatedAt", offline, "productId", "customerId")
    SELECT id, "tenantId", "licenseId", fingerprint, fingerprint, components::jsonb, 'ACTIVE', (max IS NOT NULL AND used + rn > max),
           hostname, platform, "osVersion", "appVersion", revision, ${at}, false, "productId", customer
      FROM r WHERE usable AND (max IS NULL OR used + rn <= max + gw)
    -- Either unique index: this device live on this license, or on another of the product's for this
    -- customer (activated meanwhile; the one-call path moves it). The row is refused, the call retried.
    ON CONFLICT DO NOTHING
    RETURNING *
  ), n AS (
    SELECT "licenseId", count(*)::int AS n FROM ins GROUP BY "licenseId"
  ), upd AS (
    UPDATE "License" l SET "activationsUsed" = l."activationsUsed" + n.n FROM n WHERE l.id = n."licenseId"
  ), e AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", "customerId", payload, "requestId", "occurredAt")
    SELECT r."tenantId", 'activation.created', 'client', r."licenseId"::text, 'Activation', r.id::text, r."licenseId", r."customerId",
           jsonb_build_object('fingerprint', r.fingerprint, 'goodwill', ins.goodwill, 'activationsUsed', r.used + r.rn,
                              'maxActivations', r.max, 'tokenKeyId', NULL, 'appVersion', r."appVersion"),
           r."requestId", ${at}
      FROM r JOIN ins ON ins.id = r.id
    UNION ALL
    SELECT r."tenantId", 'compliance.goodwill_used', 'client', r."licenseId"::text, 'Activation', r.id::text, r."licenseId", r."customerId",
           jsonb_build_object('activationsUsed', r.used + r.rn, 'maxActivations', r.max, 'goodwillActivations', r.gw),
           r."requestId", ${at}
      FROM r JOIN ins ON ins.id = r.id WHERE ins.goodwill
  ), whole AS (
    -- Every row the ranks gave a slot went in, or none does: a row refused by a unique index (its device
    -- went live meanwhile) would have left the rows ranked after it a slot too far, so the statement is
    -- abandoned (BatchRefused) and its calls are decided one by one.
    SELECT CASE WHEN (SELECT count(*) FROM r WHERE usable AND (max IS NULL OR used + rn <= max + gw)) = (SELECT count(*) FROM ins)
                THEN true ELSE tessera_batch_refused() > 0 END AS ok
  )`;
}

/** SQLSTATE of tessera_batch_refused() (its migration): a batched activation statement abandoned. */
const BATCH_REFUSED = 'TS001';

/** A batched activation statement was abandoned (see activationWrites): decide the call on its own. */
export class BatchRefused extends Error {}

/** The rows of a batched activation statement; null when it was abandoned (it wrote nothing). */
async function unlessRefused<T>(run: () => Promise<T[]>): Promise<T[] | null> {
  try {
    return await run();
  } catch (err) {
    if ((err as { code?: string }).code === BATCH_REFUSED) return null;
    throw err;
  }
}

/**
 * Inserts new devices' activations. The license rows are locked in id order (so two batches never
 * deadlock on them) and read after the lock, so `used` is the committed count whatever other
 * instances did, and so is the license's state: a license revoked, suspended or expired while the
 * statement waited for its row takes no device (those calls go back to the rules, which see why), nor
 * does a license whose terms changed meanwhile (a new revision: the rules read it again, and the device
 * is recorded with, and its token signed on, the terms it has now).
 * The n-th new device of a license in the batch gets slot used + n, and only while that is within
 * maxActivations + goodwillActivations. The counter then grows by the number of rows inserted. A device
 * that went live concurrently (a unique index refuses its row) would leave a gap in the ranks, so the
 * statement is abandoned then (BatchRefused) and its calls go to the one-call path. (Within a process
 * two calls of one device never share a statement; it takes another instance or a one-call activation
 * of the same device at the same moment.)
 */
const ACTIVATE = `
  WITH q AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[])
      WITH ORDINALITY AS q(id, "tenantId", "licenseId", "customerId", fingerprint, components, hostname, platform, "osVersion", "appVersion", revision, "requestId", i)
  ), ${activationWrites('q', '$13::timestamp')}
  SELECT r.i::int AS i, row_to_json(ins) AS activation, r.used + r.rn AS used, r.max, r.usable,
         r.usable AND NOT (r.max IS NULL OR r.used + r.rn <= r.max + r.gw) AS denied
    FROM r LEFT JOIN ins ON ins.id = r.id
   WHERE (SELECT ok FROM whole)`;

interface ActivationRow {
  i: number;
  activation: Record<string, unknown> | null;
  used: number | null;
  max: number | null;
  denied: boolean;
  /** The license could take devices, as read under its lock (null: not tried). */
  usable: boolean | null;
}

/**
 * The outcome of each call from the rows of ACTIVATE or ACTIVATE_CALL (`null`: not tried). A call on
 * a license no longer usable under its lock is neither created nor denied: 'retry', and the rules then
 * answer why.
 */
function activationOutcomes(items: unknown[], rows: (ActivationRow & { tried: boolean })[]): (ActivationOutcome | null)[] {
  const out: (ActivationOutcome | null)[] = items.map(() => null);
  for (const r of rows) {
    if (!r.tried) continue;
    if (r.activation) {
      const activation = asActivation(r.activation);
      out[r.i - 1] = { kind: 'created', activation, activationsUsed: Number(r.used), maxActivations: r.max, goodwill: activation.goodwill };
    } else if (r.denied) {
      out[r.i - 1] = { kind: 'denied' };
    } else {
      out[r.i - 1] = { kind: 'retry' };
    }
  }
  return out;
}

export const activationBatcher = perApp((app: AppDeps) =>
  batched<ActivationWrite, ActivationOutcome>(
    // Two calls of one device in a statement: a unique index would refuse the second's row after it
    // had taken a rank, and the devices ranked after it would count one slot too many. Of one device,
    // not only on one license: its live activation on another license of the product also refuses it.
    (batch) => inDistinctRounds(batch, (x) => `${x.tenantId}\u0000${x.fingerprint}`, async (items) => {
      const at = new Date();
      const rows = await unlessRefused(() => app.db.sql.query<ActivationRow>(ACTIVATE, [
        items.map((x) => x.activationId),
        items.map((x) => x.tenantId),
        items.map((x) => x.licenseId),
        items.map((x) => x.customerId),
        items.map((x) => x.fingerprint),
        items.map((x) => JSON.stringify(x.components)),
        items.map((x) => x.client.hostname),
        items.map((x) => x.client.platform),
        items.map((x) => x.client.osVersion),
        items.map((x) => x.client.appVersion),
        items.map((x) => x.revision),
        items.map((x) => x.requestId),
        ts(at),
      ], 'tessera_activate'));
      if (!rows) return items.map(() => ({ kind: 'retry' as const }));
      const out = activationOutcomes(items, rows.map((r) => ({ ...r, tried: true })));
      sealTenants(app, rows.filter((r) => r.activation).map((r) => items[r.i - 1]!.tenantId));
      return out.map((o) => o ?? { kind: 'retry' as const });
    }),
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);

/** An activation as the client sent it: the lookup and, when it can only be a new device, the insert. */
export interface ActivationCall {
  key: ParsedKey;
  fingerprint: string;
  components: unknown[];
  client: DeviceWrite['client'];
  /** The id the activation gets if this statement creates it. */
  activationId: string;
  requestId: string;
}

export interface ActivationCallOutcome {
  /** What the lookup found, as LOOKUP would have (the license as it was before this statement). */
  found: Found;
  /** The insert's outcome; null when the call was not tried here (the service decides it). */
  outcome: ActivationOutcome | null;
}

/**
 * The common activation in one statement: the key lookup (as LOOKUP, with the other-license check),
 * then, for the calls that can only be a new device (a license key of an ACTIVE license within its
 * dates, online-capable, with no version rule, no live activation of this fingerprint, no other
 * license of the product on it, and exact matching or no components), the cap-checked insert of
 * ACTIVATE. Stricter than the service's rules, on purpose: every call it leaves out is decided by the
 * service from the rows returned, as after a plain lookup, so one statement does what two did.
 */
const ACTIVATE_CALL = `
  WITH q AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[])
      WITH ORDINALITY AS q(kind, key, fp, id, components, hostname, platform, "osVersion", "appVersion", "requestId", "noComponents", i)
  ), f AS (
    SELECT q.*, q.fp AS fingerprint, row_to_json(l) AS license, row_to_json(a) AS activation,
           t.id AS "tokenId", to_json(t."usedAt")#>>'{}' AS "tokenUsedAt", t."activationId" AS "tokenActivationId",
           l.id AS "licenseId", l."tenantId", l."customerId", l.revision, l.state, l."startsAt", l."expiresAt",
           l."deploymentMode", l."allowedVersions", l."fingerprintMatch", a.status AS astatus,
           ${HOLDS_OTHER} AS "holdsOther"
      FROM q
    ${keyJoins('true')}
  ), ok AS (
    SELECT * FROM f
     WHERE kind = 'LIC' AND state = 'ACTIVE' AND "deploymentMode" <> 'OFFLINE'
       AND ("startsAt" IS NULL OR "startsAt" <= $12::timestamp) AND ("expiresAt" IS NULL OR "expiresAt" > $12::timestamp)
       AND COALESCE("allowedVersions", '') = '' AND astatus IS DISTINCT FROM 'ACTIVE' AND NOT "holdsOther"
       AND ("fingerprintMatch" = 'EXACT' OR "noComponents")
  ), ${activationWrites('ok', '$12::timestamp')}
  SELECT f.i::int AS i, f.license, f.activation, f."tokenId", f."tokenUsedAt", f."tokenActivationId", f."holdsOther",
         ok.i IS NOT NULL AS tried, row_to_json(ins) AS created, r.used + r.rn AS used, r.max, r.usable,
         COALESCE(r.usable AND NOT (r.max IS NULL OR r.used + r.rn <= r.max + r.gw), false) AS denied
    FROM f LEFT JOIN ok ON ok.i = f.i LEFT JOIN r ON r.i = f.i LEFT JOIN ins ON ins.id = r.id
   WHERE (SELECT ok FROM whole)`;

interface ActivationCallRow extends LookupRow {
  tried: boolean;
  created: Record<string, unknown> | null;
  used: number | null;
  max: number | null;
  denied: boolean;
  usable: boolean | null;
}

export const activationCallBatcher = perApp((app: AppDeps) =>
  batched<ActivationCall, ActivationCallOutcome | null>(
    // Two calls of one device in a batch: the second must see the first's activation (and reuse it).
    (batch) => inDistinctRounds(batch, deviceOf, async (items) => {
      const at = new Date();
      const rows = await unlessRefused(() => app.db.sql.query<ActivationCallRow>(ACTIVATE_CALL, [
        items.map((x) => x.key.kind),
        items.map((x) => x.key.key),
        items.map((x) => x.fingerprint),
        items.map((x) => x.activationId),
        items.map((x) => JSON.stringify(x.components)),
        items.map((x) => x.client.hostname),
        items.map((x) => x.client.platform),
        items.map((x) => x.client.osVersion),
        items.map((x) => x.client.appVersion),
        items.map((x) => x.requestId),
        items.map((x) => x.components.length === 0),
        ts(at),
      ], 'tessera_activate_call'));
      if (!rows) return items.map((): ActivationCallOutcome | null | Error => new BatchRefused('a device of this batch went live meanwhile'));
      const outcomes = activationOutcomes(items, rows.map((r) => ({ ...r, activation: r.created })));
      const out: (ActivationCallOutcome | null)[] = items.map(() => null);
      const created: string[] = [];
      for (const r of rows) {
        const found = foundOf(r);
        out[r.i - 1] = { found, outcome: outcomes[r.i - 1] ?? null };
        if (r.created) created.push(found.license.tenantId);
      }
      sealTenants(app, created);
      return out;
    }),
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);

/**
 * One device: two calls of it in a batch go in successive rounds, whatever their keys (with two licenses
 * of one product the second must see the first's activation, and move the device).
 */
const deviceOf = (x: { fingerprint: string }) => x.fingerprint;

/** One device of one license key: two heartbeats of it in a batch go in successive rounds. */
const deviceOnKey = (x: { key: ParsedKey; fingerprint: string }) => `${x.key.kind}:${x.key.key}\u0000${x.fingerprint}`;
