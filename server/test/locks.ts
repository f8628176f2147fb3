import type pg from 'pg';

/**
 * Waits until `n` other backends of this database wait for a lock (the tests that hold a row lock from
 * a second connection while a call waits). Read from pg_locks, which is live: inside the holder's
 * transaction pg_stat_activity is a snapshot taken at its first read and never shows a later waiter.
 */
export async function waitForLockWaiters(conn: pg.Client, n = 1): Promise<void> {
  for (let i = 0; i < 200; i++) {
    // The activity list (to keep to this database's backends) is a snapshot within a transaction too.
    await conn.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await conn.query<{ n: number }>(
      `SELECT count(DISTINCT l.pid)::int AS n FROM pg_locks l
        WHERE NOT l.granted AND l.pid <> pg_backend_pid()
          AND l.pid IN (SELECT pid FROM pg_stat_get_activity(NULL) a JOIN pg_database d ON d.oid = a.datid WHERE d.datname = current_database())`,
    );
    if (rows[0]!.n >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`fewer than ${n} backends came to wait for a lock`);
}

/** Waits until some backend waits for a lock this connection holds. */
export async function waitForBlockedBy(holder: pg.Client): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await holder.query<{ n: number }>(
      `SELECT count(DISTINCT pid)::int AS n FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))`,
    );
    if (rows[0]!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('no backend came to wait for a lock this connection holds');
}
