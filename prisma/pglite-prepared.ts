import { randomBytes } from 'node:crypto';
import { parse, type PGlite, protocol } from '@electric-sql/pglite';

/*
 * Named prepared statements on PGlite. PGlite's query() sends each statement as six protocol steps
 * (parse, describe, bind, describe, execute, sync), each a call into the WebAssembly backend, and plans
 * it anew every time: for the hot paths' long batched statements that is more than their execution
 * (a trivial statement takes 410 us that way, 160 us as one call to a named statement). Here a named
 * statement is parsed and described once per PGlite session, then each run is one call: bind, describe,
 * execute, sync.
 *
 * PGlite serialises its own queries with two mutexes it does not publish (a transaction in progress
 * holds one; every protocol exchange holds the other); runs here take them the way query() and a
 * transaction's query() do. Messages are collected with execProtocolStream, which installs its own
 * collector: execProtocol keeps the raw-data callback a socket client (the CLI, through
 * pglite-socket's execProtocolRawStream) left behind, and its answer would go to that client.
 * PGlite is pinned to one exact version in prisma/package.json; server/test/database.test.ts fails first
 * if a later version changes any of this.
 */

type Serializer = (value: unknown) => string;

interface PGliteInternals {
  _runExclusiveQuery<T>(fn: () => Promise<T>): Promise<T>;
  _runExclusiveTransaction<T>(fn: () => Promise<T>): Promise<T>;
  serializers: Record<number, Serializer>;
  parsers: Parameters<typeof parse.parseResults>[1];
}

/** The backend lost a statement it had (DEALLOCATE, DISCARD from another client of the session). */
const UNDEFINED_STATEMENT = '26000';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface PreparedRunner {
  /** Runs the statement `name` (prepared from `text` on first use); `inTransaction` when called from inside one. */
  query<T>(name: string, text: string, params: unknown[], inTransaction: boolean): Promise<T[]>;
}

export function preparedStatements(pglite: PGlite): PreparedRunner {
  const db = pglite as unknown as PGliteInternals;
  // Names of this process's statements: a socket client of the same session (the operator CLI) may
  // prepare statements of the same names for itself.
  const prefix = `tp_${randomBytes(4).toString('hex')}_`;
  const prepared = new Map<string, { statement: string; text: string; serializers: (Serializer | undefined)[] }>();
  let generation = 0;

  const exclusive = <T>(inTransaction: boolean, fn: () => Promise<T>) =>
    inTransaction ? db._runExclusiveQuery(fn) : db._runExclusiveTransaction(() => db._runExclusiveQuery(fn));

  async function prepare(name: string, text: string) {
    const statement = `${prefix}${generation}_${name}`;
    const messages = await pglite.execProtocolStream(
      concat([protocol.serialize.parse({ name: statement, text }), protocol.serialize.describe({ type: 'S', name: statement }), protocol.serialize.sync()]),
      { syncToFs: false },
    );
    const types = parse.parseDescribeStatementResults(messages);
    const entry = { statement, text, serializers: types.map((oid) => db.serializers[oid]) };
    prepared.set(name, entry);
    return entry;
  }

  async function run<T>(name: string, text: string, params: unknown[], inTransaction: boolean, retried = false): Promise<T[]> {
    try {
      return await exclusive(inTransaction, async () => {
        let entry = prepared.get(name);
        if (entry && entry.text !== text) throw new Error(`statement ${name} was prepared from another text`);
        entry ??= await prepare(name, text);
        const values = params.map((v, i) => {
          if (v === null || v === undefined) return null;
          const serialize = entry.serializers[i];
          return serialize ? serialize(v) : String(v);
        });
        const messages = await pglite.execProtocolStream(
          concat([
            protocol.serialize.bind({ statement: entry.statement, values }),
            protocol.serialize.describe({ type: 'P' }),
            protocol.serialize.execute({}),
            protocol.serialize.sync(),
          ]),
          { syncToFs: !inTransaction },
        );
        return (parse.parseResults(messages, db.parsers)[0]?.rows ?? []) as T[];
      });
    } catch (err) {
      if (!retried && (err as { code?: string }).code === UNDEFINED_STATEMENT) {
        // Every statement of the session went (DISCARD ALL): prepare them again under new names.
        prepared.clear();
        generation++;
        return run(name, text, params, inTransaction, true);
      }
      throw err;
    }
  }

  return { query: run };
}
