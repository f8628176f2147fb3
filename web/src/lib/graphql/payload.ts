/** Field errors of a ValidationError, keyed by input path ("" for the input as a whole). */
export type FieldErrors = Record<string, string>;

export interface Failure {
  message: string;
  fields: FieldErrors;
}

type Payload = { __typename: string; message?: string; fields?: { path: string; message: string }[] };

const PREFIX = /^input\./;

export function fieldErrors(fields: readonly { path: string; message: string }[]): FieldErrors {
  const out: FieldErrors = {};
  for (const f of fields) {
    const path = f.path.replace(PREFIX, '');
    out[path] = out[path] ? `${out[path]}; ${f.message}` : f.message;
  }
  return out;
}

/**
 * Splits a union payload into success or failure. Typed errors (NotFound, Conflict, Validation)
 * become a Failure whose message is the server's and whose fields map onto form inputs.
 */
export function outcome<T extends Payload, S extends T['__typename']>(
  payload: T,
  success: S,
): { ok: true; value: Extract<T, { __typename: S }> } | { ok: false; failure: Failure } {
  if (payload.__typename === success) return { ok: true, value: payload as Extract<T, { __typename: S }> };
  return { ok: false, failure: { message: payload.message ?? 'The request failed.', fields: fieldErrors(payload.fields ?? []) } };
}
