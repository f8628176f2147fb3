import { randomUUID } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { ok, type TestServer } from '../../../test/harness.ts';

/** Test helpers: a product, an edition with the given terms, licenses from it, client operations. */

export interface Issued {
  id: string;
  globalId: string;
  key: string;
  tokenKeys: string[];
}

const CREATE_PRODUCT = `mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } ... on Error { message } } }`;
const CREATE_FEATURE = `mutation($input: CreateFeatureInput!) { createFeature(input: $input) { __typename ... on Error { message } } }`;
const CREATE_EDITION = `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } ... on ValidationError { fields { path message } } } }`;
const CREATE_LICENSE = `mutation($input: CreateLicenseInput!) {
  createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key } tokenKeys } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;

export async function product(s: TestServer, token: string, features: string[] = []): Promise<string> {
  const r = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'App', code: `app-${randomUUID().slice(0, 8)}` } }, { token }));
  if (r.createProduct.__typename !== 'Product') throw new Error(JSON.stringify(r));
  for (const code of features) ok(await s.gql(CREATE_FEATURE, { input: { productId: r.createProduct.id, code, name: code } }, { token }));
  return r.createProduct.id;
}

export async function edition(s: TestServer, token: string, productId: string, terms: Record<string, unknown>): Promise<string> {
  const r = ok(
    await s.gql(CREATE_EDITION, { input: { productId, name: 'Ed', code: `ed-${randomUUID().slice(0, 8)}`, licenseType: 'PERPETUAL', ...terms } }, { token }),
  );
  if (r.createEdition.__typename !== 'Edition') throw new Error(JSON.stringify(r));
  return r.createEdition.id;
}

export async function license(s: TestServer, token: string, editionId: string, overrides: Record<string, unknown> = {}): Promise<Issued> {
  const r = ok(await s.gql(CREATE_LICENSE, { input: { editionId, ...overrides } }, { token }));
  if (r.createLicense.__typename !== 'CreateLicensePayload') throw new Error(JSON.stringify(r));
  const { id, key } = r.createLicense.license;
  return { id: decodeGlobalID(id).id, globalId: id, key, tokenKeys: r.createLicense.tokenKeys };
}

/** A product + edition + one license in one go. */
export async function issue(s: TestServer, token: string, terms: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}) {
  const features = (terms.features as string[] | undefined) ?? [];
  const productId = await product(s, token, features);
  const editionId = await edition(s, token, productId, terms);
  return { productId, editionId, ...(await license(s, token, editionId, overrides)) };
}

const ACTIVATION_FIELDS = `activation { id status fingerprint activatedAt lastHeartbeatAt appVersion license { status type expiresAt revision maxActivations activationsUsed features } }`;

export const ACTIVATE = `mutation($input: ActivateInput!) {
  activate(input: $input) {
    __typename
    ... on ActivateSuccess { token reused goodwill ${ACTIVATION_FIELDS} }
    ... on LicensingError { code message }
    ... on ValidationError { message fields { path message } }
  }
}`;

export const HEARTBEAT = `mutation($input: HeartbeatInput!) {
  heartbeat(input: $input) {
    __typename
    ... on HeartbeatSuccess { updateAvailable token nextHeartbeatBy ${ACTIVATION_FIELDS} }
    ... on LicensingError { code message }
    ... on ValidationError { message fields { path message } }
  }
}`;

export const DEACTIVATE = `mutation($input: DeactivateInput!) {
  deactivate(input: $input) {
    __typename
    ... on DeactivateSuccess { activation { id status } }
    ... on LicensingError { code message }
    ... on ValidationError { message fields { path message } }
  }
}`;

export const VALIDATE = `query($input: ValidateInput!) {
  validateLicense(input: $input) { valid code license { status type expiresAt revision maxActivations activationsUsed features } }
}`;

export const RELEASE = `mutation($input: ReleaseActivationInput!) {
  releaseActivation(input: $input) { __typename ... on Activation { id status } ... on Error { message } }
}`;

export async function activateDevice(s: TestServer, input: Record<string, unknown>) {
  return ok(await s.gql(ACTIVATE, { input })).activate;
}
export async function heartbeatDevice(s: TestServer, input: Record<string, unknown>) {
  return ok(await s.gql(HEARTBEAT, { input })).heartbeat;
}
export async function deactivateDevice(s: TestServer, input: Record<string, unknown>) {
  return ok(await s.gql(DEACTIVATE, { input })).deactivate;
}
export async function validate(s: TestServer, input: Record<string, unknown>) {
  return ok(await s.gql(VALIDATE, { input })).validateLicense;
}

export const components = (...values: string[]) => values.map((v, i) => ({ kind: ['MAC', 'CPU', 'DISK', 'HOST_ID', 'MACHINE_ID'][i % 5]!, value: v }));
