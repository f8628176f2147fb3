import { Prisma } from '@tessera/db/client';
import { pauseAfterDeadlock } from '@tessera/db/database';
import { ConflictError } from '../../errors.ts';

/**
 * A license without a customer, where the unique index "Activation_device_per_product_key" (as its
 * migration writes it) coalesces the customer: such licenses count as one customer's.
 */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** The customer column `column` as that index has it (for statements written as text; a probe must repeat the expression). */
export const deviceCustomer = (column: string) => `COALESCE(${column}, '${NIL_UUID}'::uuid)`;

/** For tagged statements: the customer column `column` is `customerId`, as that index compares them. */
export const deviceCustomerIs = (column: string, customerId: string | null) =>
  Prisma.sql`${Prisma.raw(deviceCustomer(column))} = COALESCE(${customerId}::uuid, ${NIL_UUID}::uuid)`;

type DriverError = { code?: string; cause?: { kind?: string; originalCode?: string; code?: string }; message?: string };

/** A constraint violation as Prisma reports it, as the driver adapter does (kind, SQLSTATE), or by PostgreSQL's message. */
function violates(err: unknown, prismaCode: string, kind: string, sqlstate: string, message: RegExp): boolean {
  const e = err as DriverError;
  return e?.code === prismaCode || e?.cause?.kind === kind || e?.cause?.originalCode === sqlstate || e?.cause?.code === sqlstate || message.test(e?.message ?? '');
}

/** A unique-constraint violation (P2002 / SQLSTATE 23505). */
export function isUniqueViolation(err: unknown): boolean {
  return violates(err, 'P2002', 'UniqueConstraintViolation', '23505', /duplicate key value violates unique constraint/);
}

/**
 * A transaction PostgreSQL aborted to break a deadlock (40P01; Prisma's driver adapter reports it, as a
 * serialization failure, as a write conflict, P2034). It changed nothing and can run again.
 */
export function isDeadlock(err: unknown): boolean {
  const adapter = (err as { meta?: { driverAdapterError?: DriverError } })?.meta?.driverAdapterError;
  return [err, adapter].some((e) => e && violates(e, 'P2034', 'TransactionWriteConflict', '40P01', /deadlock detected/));
}

/** Runs `transaction` again (up to `tries` times in all) when PostgreSQL aborts it to break a deadlock. */
export async function retriedOnDeadlock<T>(transaction: () => Promise<T>, tries = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (err) {
      if (attempt >= tries || !isDeadlock(err)) throw err;
      await pauseAfterDeadlock(attempt);
    }
  }
}

/** Runs the write; the violation `matches` recognises becomes a ConflictError with the message. */
async function conflictOn<T>(matches: (err: unknown) => boolean, message: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (matches(err)) throw new ConflictError(message);
    throw err;
  }
}

/** Turns a unique-constraint violation (a concurrent duplicate) into a ConflictError. */
export function uniqueOr<T>(message: string, write: () => Promise<T>): Promise<T> {
  return conflictOn(isUniqueViolation, message, write);
}

/** A foreign-key violation (P2003 / SQLSTATE 23503): a row still referenced, e.g. by a license written meanwhile. */
export function isForeignKeyViolation(err: unknown): boolean {
  return violates(err, 'P2003', 'ForeignKeyConstraintViolation', '23503', /violates foreign key constraint/);
}

/** Turns a foreign-key violation into a ConflictError. */
export function referencedOr<T>(message: string, write: () => Promise<T>): Promise<T> {
  return conflictOn(isForeignKeyViolation, message, write);
}

/** Prisma hands `contains` / `startsWith` values to LIKE as they are, so a searched "%" or "_" would be a wildcard. */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
