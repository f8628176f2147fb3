import { describe, expect, it } from 'vitest';
import { can, grantableRoles, outranks } from './permissions';
import { fieldErrors, outcome } from './graphql/payload';

describe('outcome', () => {
  it('passes the success member through', () => {
    const r = outcome({ __typename: 'Product' as const, id: '1' }, 'Product');
    expect(r.ok && r.value.id).toBe('1');
  });

  it('maps a ValidationError onto field paths', () => {
    const r = outcome(
      { __typename: 'ValidationError', message: 'code: taken', fields: [{ path: 'input.code', message: 'taken' }, { path: 'code', message: 'too long' }] },
      'Product',
    );
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.failure.message).toBe('code: taken');
      expect(r.failure.fields).toEqual({ code: 'taken; too long' });
    }
  });

  it('keeps the message of other typed errors', () => {
    const r = outcome({ __typename: 'ConflictError', message: 'A product with this code exists' }, 'Product');
    expect(!r.ok && r.failure).toEqual({ message: 'A product with this code exists', fields: {} });
  });

  it('keys input-wide problems by the empty path', () => {
    expect(fieldErrors([{ path: '', message: 'nope' }])).toEqual({ '': 'nope' });
  });
});

describe('roles', () => {
  it('follows the server scopes', () => {
    expect(can('READ_ONLY', 'suspendLicense')).toBe(false);
    expect(can('SUPPORT', 'suspendLicense')).toBe(true);
    expect(can('SUPPORT', 'revokeLicense')).toBe(false);
    expect(can('ADMIN', 'createLicense')).toBe(true);
    expect(can('SUPPORT', 'createMember')).toBe(false);
    expect(can('ADMIN', 'createMember')).toBe(true);
    expect(grantableRoles('ADMIN')).toEqual(['ADMIN', 'SUPPORT', 'READ_ONLY']);
    expect(grantableRoles('OWNER')).toEqual(['OWNER', 'ADMIN', 'SUPPORT', 'READ_ONLY']);
    expect(outranks('ADMIN', 'SUPPORT')).toBe(true);
    expect(outranks('SUPPORT', 'SUPPORT')).toBe(false);
    expect(can(null, 'viewAudit')).toBe(false);
  });
});
