import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import type { Component } from './fingerprint.ts';

/**
 * Offline (air-gapped) files made on the customer's machine. Each is a compact JWS signed with a
 * device key generated for the activation request: the request carries the public half, the vendor's
 * server keeps it, and only this machine can later sign the deactivation file that frees the seat.
 */
export const OFFLINE_TYPES = {
  request: 'tessera-request+jwt',
  deactivation: 'tessera-deactivation+jwt',
} as const;

export interface DeviceKey {
  publicJwk: JWK;
  privateJwk: JWK;
}

export async function generateDeviceKey(): Promise<DeviceKey> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return { publicJwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
}

export function armor(label: string, jws: string): string {
  return `-----BEGIN TESSERA ${label}-----\n${jws.replace(/.{1,64}/g, '$&\n')}-----END TESSERA ${label}-----\n`;
}

export interface RequestClaims {
  tenant: string;
  key: string;
  fingerprint: string;
  components: Component[];
  client: Record<string, unknown>;
}

/** `-----BEGIN TESSERA ACTIVATION REQUEST-----`: self-signed with the device key, whose public JWK rides in the header. */
export async function signActivationRequest(claims: RequestClaims, device: DeviceKey): Promise<string> {
  const key = await importJWK(device.privateJwk, 'EdDSA');
  const jws = await new SignJWT({ ...claims, nonce: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: 'EdDSA', typ: OFFLINE_TYPES.request, jwk: device.publicJwk })
    .setIssuedAt()
    .sign(key);
  return armor('ACTIVATION REQUEST', jws);
}

export interface DeactivationClaims {
  tenant: string;
  licenseId: string;
  activationId: string;
  fingerprint: string;
  /** Offline consumption per meter since the license file was installed. */
  usage: Record<string, number>;
}

/** `-----BEGIN TESSERA DEACTIVATION-----`: proof, signed by this machine's device key, that it removed the license. */
export async function signDeactivation(claims: DeactivationClaims, device: DeviceKey): Promise<string> {
  const key = await importJWK(device.privateJwk, 'EdDSA');
  const jws = await new SignJWT({ activation: claims.activationId, fingerprint: claims.fingerprint, usage: claims.usage, nonce: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: 'EdDSA', typ: OFFLINE_TYPES.deactivation })
    .setIssuer(claims.tenant)
    .setSubject(claims.licenseId)
    .setIssuedAt()
    .sign(key);
  return armor('DEACTIVATION', jws);
}
