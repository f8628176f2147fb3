import { ConflictError } from '../../errors.ts';

/** Turns a unique-constraint violation (a concurrent duplicate) into a ConflictError. */
export async function uniqueOr<T>(message: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if ((err as { code?: string }).code === 'P2002') throw new ConflictError(message);
    throw err;
  }
}
