// The SDK's public entry point (package "exports").
export { createClient, operationHash, TesseraClient } from './client.ts';
export type { Activation, ClientOptions, LicenseInfo, SeatLease, UsageOptions, UsageTicket, ValidationResult } from './client.ts';
export { entitlement, entitlementsOf, featuresOf, isEntitled, limitOf } from './entitlements.ts';
export type { Entitlement, EntitlementSource } from './entitlements.ts';
export { TesseraError } from './errors.ts';
export type { TesseraErrorCode } from './errors.ts';
export { collectFingerprint, fingerprintOf, hashComponents, rawComponents } from './fingerprint.ts';
export type { Component, Fingerprint } from './fingerprint.ts';
export { OPERATIONS } from './operations.ts';
export { defaultStatePath, fileStorage, memoryStorage } from './storage.ts';
export type { LicenseState, Storage } from './storage.ts';
export { TOKEN_TYPES, unarmor, verifyDocument, verifyLicenseFile } from './verify.ts';
export type { VerifiedDocument, VerifyOptions } from './verify.ts';
export { generateDeviceKey, OFFLINE_TYPES } from './offline.ts';
export type { DeviceKey } from './offline.ts';
