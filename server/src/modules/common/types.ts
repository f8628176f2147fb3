import { builder } from '../../builder.ts';
import {
  ConflictError,
  type FieldProblem,
  ImportError,
  LICENSING_ERROR_CODES,
  LicensingError,
  NotFoundError,
  type RowProblem,
  ValidationError,
} from '../../errors.ts';

export const ErrorInterface = builder.interfaceRef<Error>('Error').implement({
  fields: (t) => ({ message: t.exposeString('message') }),
});

export const LicensingErrorCodeEnum = builder.enumType('LicensingErrorCode', { values: LICENSING_ERROR_CODES });

builder.objectType(LicensingError, {
  name: 'LicensingError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ code: t.expose('code', { type: LicensingErrorCodeEnum }) }),
});

const FieldError = builder.objectRef<FieldProblem>('FieldError').implement({
  fields: (t) => ({
    path: t.exposeString('path', { description: 'Dotted path of the offending input field; empty for the input as a whole.' }),
    message: t.exposeString('message'),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ fields: t.field({ type: [FieldError], resolve: (e) => e.fields }) }),
});

builder.objectType(NotFoundError, { name: 'NotFoundError', interfaces: [ErrorInterface] });
builder.objectType(ConflictError, { name: 'ConflictError', interfaces: [ErrorInterface] });

const RowError = builder.objectRef<RowProblem>('RowError').implement({
  fields: (t) => ({
    line: t.exposeInt('line'),
    field: t.string({
      nullable: true,
      description: 'The column (CSV) or field (JSON lines) at fault; null when the line as a whole is (not valid JSON, a wrong number of columns).',
      resolve: (r) => r.field ?? null,
    }),
    message: t.exposeString('message', { description: 'What is wrong, in words; it starts with the field when there is one.' }),
  }),
});

builder.objectType(ImportError, {
  name: 'ImportError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ rows: t.field({ type: [RowError], resolve: (e) => e.rows }) }),
});

/** Error members of admin mutations. */
export const ADMIN_ERRORS = [ValidationError, NotFoundError, ConflictError];
/** Error members of client (SDK) operations. */
export const CLIENT_ERRORS = [LicensingError, ValidationError];

export const RoleEnum = builder.enumType('Role', { values: ['OWNER', 'ADMIN', 'SUPPORT', 'READ_ONLY'] as const });
