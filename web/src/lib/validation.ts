/** Client-side copies of the server's simple field rules (server/src/modules/common/validate.ts). */
const CODE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function codeProblem(v: string): string | null {
  if (v.length > 64) return 'must be at most 64 characters';
  if (!CODE.test(v)) return 'may contain letters, digits, "_", "." and "-" and must start with a letter or digit';
  return null;
}

export function nameProblem(v: string): string | null {
  return v.length > 200 ? 'must be at most 200 characters' : null;
}

export function emailProblem(v: string): string | null {
  if (v.length > 254) return 'must be at most 254 characters';
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v) ? null : 'is not an email address';
}

export function passwordProblem(v: string): string | null {
  if (v.length < 10) return 'must be at least 10 characters';
  return v.length > 256 ? 'must be at most 256 characters' : null;
}

/** "Pro Plan" -> "pro-plan": a code suggestion from a name. */
export function codeFrom(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
}
