import { z } from 'zod';
import { type FieldProblem, ValidationError } from '../../errors.ts';

// NUL, and either half of a UTF-16 surrogate pair without the other (JavaScript strings may hold both).
const UNSTORABLE = /[\u0000\p{Cs}]/u;

/**
 * Why PostgreSQL cannot keep `text` as given, or null. It refuses NUL in text and jsonb, and a lone
 * surrogate in jsonb; in text the driver's UTF-8 encoding turns one into U+FFFD, so two different
 * strings (fingerprints, say) would be stored as one.
 */
export function textProblem(text: string): string | null {
  if (!UNSTORABLE.test(text)) return null;
  return text.includes('\u0000') ? 'must not contain NUL characters' : 'must not contain unpaired surrogates (ill-formed Unicode)';
}

/** The text problems of every string in `input` (and of every object key), at their paths. */
export function textProblems(input: unknown, path = '', out: FieldProblem[] = [], depth = 0): FieldProblem[] {
  if (typeof input === 'string') {
    const problem = textProblem(input);
    if (problem) out.push({ path, message: problem });
  } else if (Array.isArray(input)) {
    if (depth < 16) input.forEach((v, i) => textProblems(v, path ? `${path}.${i}` : String(i), out, depth + 1));
  } else if (input && typeof input === 'object' && depth < 16 && !(input instanceof Date)) {
    for (const [k, v] of Object.entries(input)) {
      const at = path ? `${path}.${k}` : k;
      const problem = textProblem(k);
      if (problem) out.push({ path: at, message: `key ${problem}` });
      else textProblems(v, at, out, depth + 1);
    }
  }
  return out;
}

/** Parses service input; every problem becomes a field of one ValidationError. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const text = textProblems(input);
  if (text.length) throw new ValidationError(text);
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
