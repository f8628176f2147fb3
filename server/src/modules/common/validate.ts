import { z } from 'zod';
import { ValidationError } from '../../errors.ts';

/** Parses service input; every problem becomes a field of one ValidationError. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ValidationError(
    result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  );
}

export const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
export const code = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'may contain letters, digits, "_", "." and "-" and must start with a letter or digit');
export const email = z.string().trim().toLowerCase().max(254, 'must be at most 254 characters').email('is not an email address');
export const slug = z
  .string()
  .min(2, 'must be at least 2 characters')
  .max(40, 'must be at most 40 characters')
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'may contain lowercase letters, digits and "-", not at either end');
export const nonNegative = z.number().int('must be an integer').min(0, 'must not be negative').max(2_147_483_647);
export const positive = z.number().int('must be an integer').min(1, 'must be at least 1').max(2_147_483_647);
export const password = z.string().min(10, 'must be at least 10 characters').max(256, 'must be at most 256 characters');
