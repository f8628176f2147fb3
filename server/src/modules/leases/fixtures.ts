import { randomUUID } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { ok, type TestServer } from '../../../test/harness.ts';

/** Test helpers for seats and metering: a product (with meters), an edition, a license from it. */

export interface Issued {
  id: string;
  globalId: string;
  key: string;
}

export async function issueLicense(
  s: TestServer,
  token: string,
  terms: Record<string, unknown>,
  options: { meters?: string[]; overrides?: Record<string, unknown> } = {},
): Promise<Issued> {
  const code = `app-${randomUUID().slice(0, 8)}`;
  const p = ok(await s.gql(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`, { input: { name: 'App', code } }, { token }));
  const productId = p.createProduct.id as string;
  for (const meter of options.meters ?? []) {
    const m = ok(
      await s.gql(`mutation($input: CreateMeterInput!) { createMeter(input: $input) { __typename ... on Error { message } } }`, { input: { productId, code: meter, name: meter } }, { token }),
    );
    if (m.createMeter.__typename !== 'Meter') throw new Error(JSON.stringify(m));
  }
  const e = ok(
    await s.gql(
      `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } ... on ValidationError { fields { path message } } } }`,
      { input: { productId, name: 'Ed', code: 'ed', licenseType: 'PERPETUAL', ...terms } },
      { token },
    ),
  );
  if (e.createEdition.__typename !== 'Edition') throw new Error(JSON.stringify(e));
  const l = ok(
    await s.gql(
      `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key } } ... on Error { message } ... on ValidationError { fields { path message } } } }`,
      { input: { editionId: e.createEdition.id, ...(options.overrides ?? {}) } },
      { token },
    ),
  );
  if (l.createLicense.__typename !== 'CreateLicensePayload') throw new Error(JSON.stringify(l));
  const { id, key } = l.createLicense.license;
  return { id: decodeGlobalID(id).id, globalId: id, key };
}

/** Decodes a compact JWS without verifying it (tests check the header and claims). */
export function decodeJws(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, c] = token.split('.');
  return { header: JSON.parse(Buffer.from(h!, 'base64url').toString()), claims: JSON.parse(Buffer.from(c!, 'base64url').toString()) };
}
