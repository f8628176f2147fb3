import { ConflictError } from '../../errors.ts';

/** A unique-constraint violation, as Prisma reports it (P2002) or as the driver adapter does (SQLSTATE 23505). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { kind?: string; originalCode?: string; code?: string }; message?: string };
  return (
    e?.code === 'P2002' ||
    e?.cause?.kind === 'UniqueConstraintViolation' ||
    e?.cause?.originalCode === '23505' ||
    e?.cause?.code === '23505' ||
    /duplicate key value violates unique constraint/.test(e?.message ?? '')
  );
}

/** Turns a unique-constraint violation (a concurrent duplicate) into a ConflictError. */
export async function uniqueOr<T>(message: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(message);
    throw err;
  }
}

/** A foreign-key violation (P2003 / SQLSTATE 23503): a row still referenced, e.g. by a license written meanwhile. */
export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { kind?: string; originalCode?: string; code?: string }; message?: string };
  return (
    e?.code === 'P2003' ||
    e?.cause?.kind === 'ForeignKeyConstraintViolation' ||
    e?.cause?.originalCode === '23503' ||
    e?.cause?.code === '23503' ||
    /violates foreign key constraint/.test(e?.message ?? '')
  );
}

/** Turns a foreign-key violation into a ConflictError. */
export async function referencedOr<T>(message: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (isForeignKeyViolation(err)) throw new ConflictError(message);
    throw err;
  }
}

/** Prisma hands `contains` / `startsWith` values to LIKE as they are, so a searched "%" or "_" would be a wildcard. */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
