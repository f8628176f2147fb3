export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
  /** A date-time string at UTC, such as 2007-12-03T10:15:30Z, compliant with the `date-time` format outlined in section 5.6 of the RFC 3339 profile of the ISO 8601 standard for representation of dates and times using the Gregorian calendar. */
  DateTime: { input: string; output: string; }
  /** The `JSON` scalar type represents JSON values as specified by [ECMA-404](http://www.ecma-international.org/publications/files/ECMA-ST/ECMA-404.pdf). */
  JSON: { input: unknown; output: unknown; }
};

export type ActivateInput = {
  client?: InputMaybe<ClientInfoInput>;
  components?: InputMaybe<Array<FingerprintComponentInput>>;
  /** Stable device id computed by the SDK. */
  fingerprint: Scalars['String']['input'];
  /** A retry with the same key returns the first result. */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  /** A license key or a single-use token key. */
  key: Scalars['String']['input'];
};

export type ActivateResult = ActivateSuccess | LicensingError | ValidationError;

export type ActivateSuccess = {
  __typename?: 'ActivateSuccess';
  activation: Activation;
  /** True when the activation sits in the goodwill (soft-limit) zone. */
  goodwill: Scalars['Boolean']['output'];
  /** True when this device already held this activation. */
  reused: Scalars['Boolean']['output'];
  /** Compact JWS, typ "tessera-activation+jwt". */
  token: Scalars['String']['output'];
};

export type Activation = Node & {
  __typename?: 'Activation';
  activatedAt: Scalars['DateTime']['output'];
  appVersion?: Maybe<Scalars['String']['output']>;
  fingerprint: Scalars['String']['output'];
  goodwill: Scalars['Boolean']['output'];
  /** The device's recent heartbeats, newest first: last seen, version and OS over time (admin only). */
  heartbeats: Array<HeartbeatSample>;
  hostname?: Maybe<Scalars['String']['output']>;
  id: Scalars['ID']['output'];
  lastHeartbeatAt?: Maybe<Scalars['DateTime']['output']>;
  license: LicenseInfo;
  offline: Scalars['Boolean']['output'];
  osVersion?: Maybe<Scalars['String']['output']>;
  platform?: Maybe<Scalars['String']['output']>;
  releasedAt?: Maybe<Scalars['DateTime']['output']>;
  status: ActivationStatus;
};


export type ActivationHeartbeatsArgs = {
  last?: InputMaybe<Scalars['Int']['input']>;
};

export type ActivationDay = {
  __typename?: 'ActivationDay';
  /** Devices activated that day (new activations; a device reusing its own is not counted). */
  activations: Scalars['Int']['output'];
  /** The calendar day, YYYY-MM-DD, in the time zone asked for. */
  date: Scalars['String']['output'];
};

export type ActivationStatus =
  | 'ACTIVE'
  | 'INACTIVE'
  | 'RELEASED';

export type ActivationsPerDay = {
  __typename?: 'ActivationsPerDay';
  /** The `activity` feed cursor the counts are exact up to: the `activation.created` events of `activity(after: cursor)` are the activations not counted here, each once. */
  cursor?: Maybe<Scalars['ID']['output']>;
  /** Oldest first; the last is today in `timeZone`; days without activations count 0. */
  days: Array<ActivationDay>;
  timeZone: Scalars['String']['output'];
};

export type ActivationsPerDayResult = ActivationsPerDay | ConflictError | NotFoundError | ValidationError;

/** A domain event of the tenant, as the activity feed delivers it. */
export type ActivityEvent = {
  __typename?: 'ActivityEvent';
  actor: EventActor;
  customer?: Maybe<Customer>;
  customerId?: Maybe<Scalars['ID']['output']>;
  /** The audit event id; pass the last one seen as `after` to resume. */
  id: Scalars['ID']['output'];
  license?: Maybe<License>;
  licenseId?: Maybe<Scalars['ID']['output']>;
  occurredAt: Scalars['DateTime']['output'];
  /** null when withheld: an event about a member or an API token, for a role that can read neither them (ADMIN) nor the audit log (SUPPORT). */
  payload?: Maybe<Scalars['JSON']['output']>;
  requestId?: Maybe<Scalars['String']['output']>;
  seq: Scalars['Int']['output'];
  subjectId: Scalars['String']['output'];
  subjectType: Scalars['String']['output'];
  type: Scalars['String']['output'];
};

export type ActivityFilter = {
  customerId?: InputMaybe<Scalars['ID']['input']>;
  licenseId?: InputMaybe<Scalars['ID']['input']>;
  /** Event types, e.g. ["activation.created"]. */
  types?: InputMaybe<Array<Scalars['String']['input']>>;
};

export type ApiToken = Node & {
  __typename?: 'ApiToken';
  createdAt: Scalars['DateTime']['output'];
  /** The member the token was made for: the one signed in when it was created, or the member of the token that created it. Null for tokens of the operator (the tenant's first token) and of a member since removed. Removing the member revokes the token; demoting them revokes it if its role is above their new one. */
  createdBy?: Maybe<Member>;
  /** After this instant the token authenticates nothing (null: until revoked). */
  expiresAt?: Maybe<Scalars['DateTime']['output']>;
  id: Scalars['ID']['output'];
  lastUsedAt?: Maybe<Scalars['DateTime']['output']>;
  name: Scalars['String']['output'];
  /** The first characters of the secret, to recognise it; the secret itself is shown once. */
  prefix: Scalars['String']['output'];
  revokedAt?: Maybe<Scalars['DateTime']['output']>;
  role: Role;
};

export type ArchiveEditionInput = {
  editionId: Scalars['ID']['input'];
};

export type ArchiveEditionResult = ConflictError | Edition | NotFoundError | ValidationError;

export type AuditChainBreak = {
  __typename?: 'AuditChainBreak';
  eventId?: Maybe<Scalars['ID']['output']>;
  message: Scalars['String']['output'];
  reason: AuditChainBreakReason;
  seq: Scalars['Int']['output'];
};

export type AuditChainBreakReason =
  /** An entry was altered after it was sealed. */
  | 'HASH_MISMATCH'
  /** An entry was deleted: the sequence has a hole. */
  | 'MISSING_ENTRY'
  /** An entry does not commit to the one before it. */
  | 'PREV_HASH_MISMATCH'
  /** The newest entries were deleted: the chain head points past the log. */
  | 'TRUNCATED';

export type AuditChainVerification = {
  __typename?: 'AuditChainVerification';
  /** Entries whose hash was recomputed. */
  checked: Scalars['Int']['output'];
  firstBroken?: Maybe<AuditChainBreak>;
  headSeq: Scalars['Int']['output'];
  ok: Scalars['Boolean']['output'];
  /** Committed entries not chained yet. */
  unsealed: Scalars['Int']['output'];
};

export type AuditEvent = {
  __typename?: 'AuditEvent';
  actorId?: Maybe<Scalars['String']['output']>;
  actorType: Scalars['String']['output'];
  customerId?: Maybe<Scalars['String']['output']>;
  hash?: Maybe<Scalars['String']['output']>;
  id: Scalars['ID']['output'];
  licenseId?: Maybe<Scalars['String']['output']>;
  occurredAt: Scalars['DateTime']['output'];
  payload: Scalars['JSON']['output'];
  prevHash?: Maybe<Scalars['String']['output']>;
  requestId?: Maybe<Scalars['String']['output']>;
  /** Position in the tenant audit chain; null for a moment after commit. */
  seq?: Maybe<Scalars['Int']['output']>;
  subjectId: Scalars['String']['output'];
  subjectType: Scalars['String']['output'];
  type: Scalars['String']['output'];
};

export type AuthorizeUsageInput = {
  fingerprint?: InputMaybe<Scalars['String']['input']>;
  /** Same key and parameters return the original ticket; other parameters fail. */
  idempotencyKey: Scalars['String']['input'];
  key: Scalars['String']['input'];
  meter: Scalars['String']['input'];
  quantity: Scalars['Int']['input'];
};

export type AuthorizeUsageResult = LicensingError | UsageTicket | ValidationError;

export type BorrowSeatInput = {
  key: Scalars['String']['input'];
  leaseId: Scalars['ID']['input'];
  /** How long to hold the seat offline; capped at the maximum borrow period. */
  seconds: Scalars['Int']['input'];
};

export type BorrowSeatResult = LicensingError | SeatLease | ValidationError;

export type ChangeMemberRoleInput = {
  memberId: Scalars['ID']['input'];
  /** Only an owner may grant OWNER; the last owner keeps it. */
  role: Role;
};

export type ChangeMemberRoleResult = ConflictError | Member | NotFoundError | ValidationError;

export type ChangePasswordInput = {
  currentPassword: Scalars['String']['input'];
  newPassword: Scalars['String']['input'];
};

export type ChangePasswordPayload = {
  __typename?: 'ChangePasswordPayload';
  memberId: Scalars['ID']['output'];
};

export type ChangePasswordResult = ChangePasswordPayload | ValidationError;

export type CheckoutSeatInput = {
  /** The holder's department or cost centre, for seat analytics (seatMap.breakdown). */
  department?: InputMaybe<Scalars['String']['input']>;
  fingerprint: Scalars['String']['input'];
  /** A retry with the same key (per license, for 24 hours) returns the first lease; other parameters fail with IDEMPOTENCY_KEY_REUSED. */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  key: Scalars['String']['input'];
  /** Required when the license counts seats per user. */
  user?: InputMaybe<Scalars['String']['input']>;
  /** Queue for a seat when none is free instead of failing with NO_SEATS_AVAILABLE. */
  wait?: InputMaybe<Scalars['Boolean']['input']>;
};

export type CheckoutSeatResult = LicensingError | SeatLease | SeatQueued | ValidationError;

export type ClientInfoInput = {
  appVersion?: InputMaybe<Scalars['String']['input']>;
  hostname?: InputMaybe<Scalars['String']['input']>;
  osVersion?: InputMaybe<Scalars['String']['input']>;
  platform?: InputMaybe<Scalars['String']['input']>;
};

export type ClientType =
  | 'DEVICES'
  | 'USERS';

export type CommitUsageInput = {
  key: Scalars['String']['input'];
  /** At most the authorized quantity; all of it when omitted. */
  quantity?: InputMaybe<Scalars['Int']['input']>;
  ticketId: Scalars['ID']['input'];
};

export type CommitUsageResult = LicensingError | UsageTicket | ValidationError;

export type ComplianceCrossing = {
  __typename?: 'ComplianceCrossing';
  crossedAt: Scalars['DateTime']['output'];
  metric: ComplianceMetric;
  percent: Scalars['Int']['output'];
};

export type ComplianceMetric =
  | 'ACTIVATIONS'
  | 'SEATS';

/** Expiring-soon lead times and heartbeat tolerance in force for the tenant, or for one license. */
export type ComplianceSettings = {
  __typename?: 'ComplianceSettings';
  /** Days before expiry at which compliance.license_expiring is raised, once per license and expiry date. */
  expiringLeadDays: Array<Scalars['Int']['output']>;
  /** Silence allowed past heartbeatSeconds before compliance.heartbeat_timeout, in percent of it (100: one extra interval). */
  heartbeatTolerancePercent: Scalars['Int']['output'];
  /** False when inherited (license from tenant, tenant from the defaults). */
  leadDaysOverridden: Scalars['Boolean']['output'];
  licenseId?: Maybe<Scalars['ID']['output']>;
};

export type ComplianceStatus =
  /** Within every threshold. */
  | 'OK'
  /** Over a cap (goodwill zone), or expired while still in use. */
  | 'VIOLATION'
  /** At or above a threshold, expiring within a lead time, or with devices past their heartbeat. */
  | 'WARNING';

export type ComplianceSummary = {
  __typename?: 'ComplianceSummary';
  /** The licenses, worst first (VIOLATION, WARNING, OK), then oldest first: at most 1000. The counts and the status cover every license. */
  licenses: Array<LicenseCompliance>;
  ok: Scalars['Int']['output'];
  /** The worst status of the licenses. */
  status: ComplianceStatus;
  violation: Scalars['Int']['output'];
  warning: Scalars['Int']['output'];
};

export type ComplianceThresholds = {
  __typename?: 'ComplianceThresholds';
  licenseId?: Maybe<Scalars['ID']['output']>;
  metric: ComplianceMetric;
  percents: Array<Scalars['Int']['output']>;
};

export type ConflictError = Error & {
  __typename?: 'ConflictError';
  message: Scalars['String']['output'];
};

export type CreateApiTokenInput = {
  /** After this instant the token authenticates nothing; in the future, at most ten years ahead. Omitted or null: until revoked. */
  expiresAt?: InputMaybe<Scalars['DateTime']['input']>;
  name: Scalars['String']['input'];
  role: Role;
};

export type CreateApiTokenPayload = {
  __typename?: 'CreateApiTokenPayload';
  apiToken: ApiToken;
  /** The bearer secret. It is not stored and cannot be shown again. */
  token: Scalars['String']['output'];
};

export type CreateApiTokenResult = ConflictError | CreateApiTokenPayload | NotFoundError | ValidationError;

export type CreateCustomerInput = {
  email?: InputMaybe<Scalars['String']['input']>;
  name: Scalars['String']['input'];
};

export type CreateCustomerResult = ConflictError | Customer | NotFoundError | ValidationError;

export type CreateEditionInput = {
  allowOffline?: InputMaybe<Scalars['Boolean']['input']>;
  /** A semver range, e.g. ">=2.0.0 <3.0.0". */
  allowedVersions?: InputMaybe<Scalars['String']['input']>;
  clientType?: InputMaybe<ClientType>;
  code: Scalars['String']['input'];
  deploymentMode?: InputMaybe<DeploymentMode>;
  /** Numeric entitlements (at most 100). A feature is either in `features` (on/off) or here (with a limit), not both. */
  entitlements?: InputMaybe<Array<EntitlementInput>>;
  features?: InputMaybe<Array<Scalars['String']['input']>>;
  fingerprintMatch?: InputMaybe<FingerprintMatch>;
  /** Activations allowed beyond maxActivations (soft limit); each raises a compliance event. */
  goodwillActivations?: InputMaybe<Scalars['Int']['input']>;
  /** SUBSCRIPTION only: how long past expiry the devices and seats it serves keep working (renewal pending). */
  gracePeriodSeconds?: InputMaybe<Scalars['Int']['input']>;
  heartbeatSeconds?: InputMaybe<Scalars['Int']['input']>;
  inactivityReclaimSeconds?: InputMaybe<Scalars['Int']['input']>;
  leaseSeconds?: InputMaybe<Scalars['Int']['input']>;
  licenseType: LicenseType;
  maxActivations?: InputMaybe<Scalars['Int']['input']>;
  meters?: InputMaybe<Array<MeterEntitlementInput>>;
  name: Scalars['String']['input'];
  productId: Scalars['ID']['input'];
  provisioning?: InputMaybe<Provisioning>;
  seats?: InputMaybe<Scalars['Int']['input']>;
  /** Days a license is valid from issue; null = perpetual. */
  validityDays?: InputMaybe<Scalars['Int']['input']>;
};

export type CreateEditionResult = ConflictError | Edition | NotFoundError | ValidationError;

export type CreateFeatureInput = {
  code: Scalars['String']['input'];
  description?: InputMaybe<Scalars['String']['input']>;
  name: Scalars['String']['input'];
  productId: Scalars['ID']['input'];
};

export type CreateFeatureResult = ConflictError | Feature | NotFoundError | ValidationError;

export type CreateLicenseInput = {
  allowOffline?: InputMaybe<Scalars['Boolean']['input']>;
  /** A semver range, e.g. ">=2.0.0 <3.0.0". */
  allowedVersions?: InputMaybe<Scalars['String']['input']>;
  clientType?: InputMaybe<ClientType>;
  customerId?: InputMaybe<Scalars['ID']['input']>;
  deploymentMode?: InputMaybe<DeploymentMode>;
  editionId: Scalars['ID']['input'];
  /** Numeric entitlements (at most 100). A feature is either in `features` (on/off) or here (with a limit), not both. */
  entitlements?: InputMaybe<Array<EntitlementInput>>;
  /** Fixed expiry; replaces the edition validity. */
  expiresAt?: InputMaybe<Scalars['DateTime']['input']>;
  features?: InputMaybe<Array<Scalars['String']['input']>>;
  fingerprintMatch?: InputMaybe<FingerprintMatch>;
  /** Activations allowed beyond maxActivations (soft limit); each raises a compliance event. */
  goodwillActivations?: InputMaybe<Scalars['Int']['input']>;
  /** SUBSCRIPTION only: how long past expiry the devices and seats it serves keep working (renewal pending). */
  gracePeriodSeconds?: InputMaybe<Scalars['Int']['input']>;
  heartbeatSeconds?: InputMaybe<Scalars['Int']['input']>;
  inactivityReclaimSeconds?: InputMaybe<Scalars['Int']['input']>;
  leaseSeconds?: InputMaybe<Scalars['Int']['input']>;
  licenseType?: InputMaybe<LicenseType>;
  maxActivations?: InputMaybe<Scalars['Int']['input']>;
  metadata?: InputMaybe<Scalars['JSON']['input']>;
  meters?: InputMaybe<Array<MeterEntitlementInput>>;
  name?: InputMaybe<Scalars['String']['input']>;
  provisioning?: InputMaybe<Provisioning>;
  seats?: InputMaybe<Scalars['Int']['input']>;
  startsAt?: InputMaybe<Scalars['DateTime']['input']>;
  /** Single-use token keys to issue with the license (each activates one device). */
  tokenCount?: InputMaybe<Scalars['Int']['input']>;
  /** Days a license is valid from issue; null = perpetual. */
  validityDays?: InputMaybe<Scalars['Int']['input']>;
};

export type CreateLicensePayload = {
  __typename?: 'CreateLicensePayload';
  license: License;
  tokenKeys: Array<Scalars['String']['output']>;
};

export type CreateLicenseResult = ConflictError | CreateLicensePayload | NotFoundError | ValidationError;

export type CreateMemberInput = {
  email: Scalars['String']['input'];
  name?: InputMaybe<Scalars['String']['input']>;
  password: Scalars['String']['input'];
  role: Role;
};

export type CreateMemberResult = ConflictError | Member | NotFoundError | ValidationError;

export type CreateMeterInput = {
  code: Scalars['String']['input'];
  name: Scalars['String']['input'];
  productId: Scalars['ID']['input'];
  unit?: InputMaybe<Scalars['String']['input']>;
};

export type CreateMeterResult = ConflictError | Meter | NotFoundError | ValidationError;

export type CreateProductInput = {
  code: Scalars['String']['input'];
  name: Scalars['String']['input'];
};

export type CreateProductResult = ConflictError | NotFoundError | Product | ValidationError;

export type CreateWebhookEndpointInput = {
  description?: InputMaybe<Scalars['String']['input']>;
  /** Default true. */
  enabled?: InputMaybe<Scalars['Boolean']['input']>;
  /** Event types or "<resource>.*" patterns; empty, absent or ["*"]: every event. */
  eventTypes?: InputMaybe<Array<Scalars['String']['input']>>;
  /** https:// in production, to a public address. */
  url: Scalars['String']['input'];
};

export type CreateWebhookEndpointPayload = {
  __typename?: 'CreateWebhookEndpointPayload';
  endpoint: WebhookEndpoint;
  /** The signing secret (whsec_...). It cannot be shown again. */
  secret: Scalars['String']['output'];
};

export type CreateWebhookEndpointResult = ConflictError | CreateWebhookEndpointPayload | NotFoundError | ValidationError;

export type Customer = Node & {
  __typename?: 'Customer';
  createdAt: Scalars['DateTime']['output'];
  email?: Maybe<Scalars['String']['output']>;
  id: Scalars['ID']['output'];
  /** Licenses issued to the customer, in every status (a customer holding any cannot be deleted). */
  licenseCount: Scalars['Int']['output'];
  name: Scalars['String']['output'];
};

export type DeactivateInput = {
  fingerprint: Scalars['String']['input'];
  key: Scalars['String']['input'];
};

export type DeactivateResult = DeactivateSuccess | LicensingError | ValidationError;

export type DeactivateSuccess = {
  __typename?: 'DeactivateSuccess';
  activation: Activation;
};

export type DeleteCustomerInput = {
  customerId: Scalars['ID']['input'];
};

export type DeleteCustomerPayload = {
  __typename?: 'DeleteCustomerPayload';
  deletedId: Scalars['ID']['output'];
};

export type DeleteCustomerResult = ConflictError | DeleteCustomerPayload | NotFoundError | ValidationError;

export type DeleteEditionInput = {
  editionId: Scalars['ID']['input'];
};

export type DeleteEditionPayload = {
  __typename?: 'DeleteEditionPayload';
  deletedId: Scalars['ID']['output'];
};

export type DeleteEditionResult = ConflictError | DeleteEditionPayload | NotFoundError | ValidationError;

export type DeleteFeatureInput = {
  featureId: Scalars['ID']['input'];
};

export type DeleteFeaturePayload = {
  __typename?: 'DeleteFeaturePayload';
  deletedId: Scalars['ID']['output'];
};

export type DeleteFeatureResult = ConflictError | DeleteFeaturePayload | NotFoundError | ValidationError;

export type DeleteMeterInput = {
  meterId: Scalars['ID']['input'];
};

export type DeleteMeterPayload = {
  __typename?: 'DeleteMeterPayload';
  deletedId: Scalars['ID']['output'];
};

export type DeleteMeterResult = ConflictError | DeleteMeterPayload | NotFoundError | ValidationError;

export type DeleteProductInput = {
  productId: Scalars['ID']['input'];
};

export type DeleteProductPayload = {
  __typename?: 'DeleteProductPayload';
  deletedId: Scalars['ID']['output'];
};

export type DeleteProductResult = ConflictError | DeleteProductPayload | NotFoundError | ValidationError;

export type DeleteWebhookEndpointInput = {
  id: Scalars['ID']['input'];
};

export type DeleteWebhookEndpointPayload = {
  __typename?: 'DeleteWebhookEndpointPayload';
  deletedId: Scalars['ID']['output'];
};

export type DeleteWebhookEndpointResult = ConflictError | DeleteWebhookEndpointPayload | NotFoundError | ValidationError;

export type DeploymentMode =
  | 'HYBRID'
  | 'OFFLINE'
  | 'ONLINE';

export type DeviceBreakdown = {
  __typename?: 'DeviceBreakdown';
  /** Devices whose value is not listed in `values`. */
  others: Scalars['Int']['output'];
  /** Most devices first, at most 20. */
  values: Array<DeviceShare>;
};

export type DeviceInsights = {
  __typename?: 'DeviceInsights';
  /** The devices heard from, by the app version they last reported. */
  appVersions: DeviceBreakdown;
  /** Active devices heard from (a heartbeat, or their activation) since `since`. */
  devices: Scalars['Int']['output'];
  /** The devices heard from, by OS version. */
  osVersions: DeviceBreakdown;
  /** The devices heard from, by platform. */
  platforms: DeviceBreakdown;
  seenWithinDays: Scalars['Int']['output'];
  /** Active devices not heard from since `since`, still holding their activation. */
  silentDevices: Scalars['Int']['output'];
  since: Scalars['DateTime']['output'];
};

export type DeviceInsightsResult = ConflictError | DeviceInsights | NotFoundError | ValidationError;

export type DeviceShare = {
  __typename?: 'DeviceShare';
  devices: Scalars['Int']['output'];
  /** null: the devices did not report it. */
  value?: Maybe<Scalars['String']['output']>;
};

export type Edition = Node & {
  __typename?: 'Edition';
  allowOffline: Scalars['Boolean']['output'];
  allowedVersions?: Maybe<Scalars['String']['output']>;
  /** When the edition was retired: it issues no new licenses; those it issued keep working. Null = current. */
  archivedAt?: Maybe<Scalars['DateTime']['output']>;
  clientType: ClientType;
  code: Scalars['String']['output'];
  createdAt: Scalars['DateTime']['output'];
  deploymentMode: DeploymentMode;
  entitlements: Array<Entitlement>;
  features: Array<Scalars['String']['output']>;
  fingerprintMatch: FingerprintMatch;
  goodwillActivations: Scalars['Int']['output'];
  gracePeriodSeconds?: Maybe<Scalars['Int']['output']>;
  heartbeatSeconds?: Maybe<Scalars['Int']['output']>;
  id: Scalars['ID']['output'];
  inactivityReclaimSeconds?: Maybe<Scalars['Int']['output']>;
  leaseSeconds?: Maybe<Scalars['Int']['output']>;
  /** Licenses issued from the edition, in every status (an edition that issued any cannot be deleted; it can be archived). */
  licenseCount: Scalars['Int']['output'];
  licenseType: LicenseType;
  maxActivations?: Maybe<Scalars['Int']['output']>;
  meters: Array<MeterEntitlement>;
  name: Scalars['String']['output'];
  product: Product;
  provisioning: Provisioning;
  seats?: Maybe<Scalars['Int']['output']>;
  validityDays?: Maybe<Scalars['Int']['output']>;
};

/** A feature with a numeric limit, e.g. projects = 10. Entitled when the limit is above 0. */
export type Entitlement = {
  __typename?: 'Entitlement';
  feature: Scalars['String']['output'];
  limit: Scalars['Int']['output'];
};

export type EntitlementInput = {
  /** A feature code of the product; it must not also be in `features`. */
  feature: Scalars['String']['input'];
  /** 0 to 2147483647. */
  limit: Scalars['Int']['input'];
};

export type Error = {
  message: Scalars['String']['output'];
};

export type EventActor = {
  __typename?: 'EventActor';
  id?: Maybe<Scalars['String']['output']>;
  /** user, api_token, operator, client_key, system... */
  type: Scalars['String']['output'];
};

export type Feature = Node & {
  __typename?: 'Feature';
  code: Scalars['String']['output'];
  description?: Maybe<Scalars['String']['output']>;
  id: Scalars['ID']['output'];
  name: Scalars['String']['output'];
};

export type FieldError = {
  __typename?: 'FieldError';
  message: Scalars['String']['output'];
  /** Dotted path of the offending input field; empty for the input as a whole. */
  path: Scalars['String']['output'];
};

export type FingerprintComponentInput = {
  /** MAC, CPU, HOST_ID, DISK, MACHINE_ID, ... */
  kind: Scalars['String']['input'];
  value: Scalars['String']['input'];
};

export type FingerprintMatch =
  | 'ANY_TWO'
  | 'EXACT'
  | 'MAJORITY';

export type HeartbeatInput = {
  client?: InputMaybe<ClientInfoInput>;
  fingerprint: Scalars['String']['input'];
  key: Scalars['String']['input'];
  /** The license revision the client holds. */
  revision?: InputMaybe<Scalars['Int']['input']>;
};

export type HeartbeatResult = HeartbeatSuccess | LicensingError | ValidationError;

export type HeartbeatSample = {
  __typename?: 'HeartbeatSample';
  appVersion?: Maybe<Scalars['String']['output']>;
  at: Scalars['DateTime']['output'];
  osVersion?: Maybe<Scalars['String']['output']>;
  platform?: Maybe<Scalars['String']['output']>;
};

export type HeartbeatSeatResult = LicensingError | SeatLease | ValidationError;

export type HeartbeatSuccess = {
  __typename?: 'HeartbeatSuccess';
  activation: Activation;
  nextHeartbeatBy: Scalars['DateTime']['output'];
  /** A fresh activation token when updateAvailable. */
  token?: Maybe<Scalars['String']['output']>;
  /** The license changed since `revision`. */
  updateAvailable: Scalars['Boolean']['output'];
};

export type ImportError = Error & {
  __typename?: 'ImportError';
  message: Scalars['String']['output'];
  rows: Array<RowError>;
};

export type ImportFormat =
  | 'CSV'
  | 'JSONL';

export type ImportLicensesInput = {
  /** CSV with a header row, or one JSON object per line. */
  data: Scalars['String']['input'];
  format: ImportFormat;
};

export type ImportLicensesPayload = {
  __typename?: 'ImportLicensesPayload';
  count: Scalars['Int']['output'];
  licenses: Array<License>;
};

export type ImportLicensesResult = ConflictError | ImportError | ImportLicensesPayload | NotFoundError | ValidationError;

export type ImportOfflineDeactivationInput = {
  /** The `-----BEGIN TESSERA DEACTIVATION-----` file from the customer. */
  file: Scalars['String']['input'];
};

export type ImportOfflineDeactivationPayload = {
  __typename?: 'ImportOfflineDeactivationPayload';
  activation: Activation;
  /** False when this activation was already deactivated by an earlier file: nothing changed. */
  imported: Scalars['Boolean']['output'];
};

export type ImportOfflineDeactivationResult = ConflictError | ImportOfflineDeactivationPayload | LicensingError | NotFoundError | ValidationError;

export type IssueOfflineLicenseInput = {
  /** Or the machine fingerprint, typed in (no device key: deactivate from the console). */
  fingerprint?: InputMaybe<Scalars['String']['input']>;
  licenseId: Scalars['ID']['input'];
  /** The request file the customer made (`tessera-client request`). */
  request?: InputMaybe<Scalars['String']['input']>;
};

export type IssueOfflineLicenseResult = ConflictError | LicensingError | NotFoundError | OfflineLicensePayload | ValidationError;

export type Lease = Node & {
  __typename?: 'Lease';
  borrowed: Scalars['Boolean']['output'];
  department?: Maybe<Scalars['String']['output']>;
  endedAt?: Maybe<Scalars['DateTime']['output']>;
  expiresAt: Scalars['DateTime']['output'];
  fingerprint: Scalars['String']['output'];
  grantedAt: Scalars['DateTime']['output'];
  /** The fingerprint or user the seat is counted by. */
  holder: Scalars['String']['output'];
  id: Scalars['ID']['output'];
  renewedAt: Scalars['DateTime']['output'];
  status: LeaseStatus;
  user?: Maybe<Scalars['String']['output']>;
};

export type LeaseInput = {
  key: Scalars['String']['input'];
  leaseId: Scalars['ID']['input'];
};

export type LeaseStatus =
  | 'ACTIVE'
  | 'EXPIRED'
  | 'RELEASED';

export type License = Node & {
  __typename?: 'License';
  activations: LicenseActivationsConnection;
  activationsUsed: Scalars['Int']['output'];
  allowOffline: Scalars['Boolean']['output'];
  allowedVersions?: Maybe<Scalars['String']['output']>;
  clientType: ClientType;
  createdAt: Scalars['DateTime']['output'];
  customer?: Maybe<Customer>;
  deploymentMode: DeploymentMode;
  edition: Edition;
  entitlements: Array<Entitlement>;
  expiresAt?: Maybe<Scalars['DateTime']['output']>;
  features: Array<Scalars['String']['output']>;
  fingerprintMatch: FingerprintMatch;
  goodwillActivations: Scalars['Int']['output'];
  /** SUBSCRIPTION with a grace period: until when it keeps serving its devices past expiresAt. */
  graceEndsAt?: Maybe<Scalars['DateTime']['output']>;
  gracePeriodSeconds?: Maybe<Scalars['Int']['output']>;
  heartbeatSeconds?: Maybe<Scalars['Int']['output']>;
  id: Scalars['ID']['output'];
  /** Expired, but still serving its devices and seats (renewal pending). */
  inGracePeriod: Scalars['Boolean']['output'];
  inactivityReclaimSeconds?: Maybe<Scalars['Int']['output']>;
  key: Scalars['String']['output'];
  leaseSeconds?: Maybe<Scalars['Int']['output']>;
  maxActivations?: Maybe<Scalars['Int']['output']>;
  metadata: Scalars['JSON']['output'];
  meters: Array<MeterEntitlement>;
  name?: Maybe<Scalars['String']['output']>;
  product: Product;
  provisioning: Provisioning;
  revision: Scalars['Int']['output'];
  revokedAt?: Maybe<Scalars['DateTime']['output']>;
  seats?: Maybe<Scalars['Int']['output']>;
  startsAt?: Maybe<Scalars['DateTime']['output']>;
  status: LicenseStatus;
  suspendedAt?: Maybe<Scalars['DateTime']['output']>;
  syncState: SyncState;
  tokenKeys: Array<TokenKey>;
  type: LicenseType;
  updatedAt: Scalars['DateTime']['output'];
};


export type LicenseActivationsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  before?: InputMaybe<Scalars['String']['input']>;
  first?: InputMaybe<Scalars['Int']['input']>;
  last?: InputMaybe<Scalars['Int']['input']>;
  status?: InputMaybe<ActivationStatus>;
};

export type LicenseActivationsConnection = {
  __typename?: 'LicenseActivationsConnection';
  edges: Array<LicenseActivationsConnectionEdge>;
  pageInfo: PageInfo;
  totalCount: Scalars['Int']['output'];
};

export type LicenseActivationsConnectionEdge = {
  __typename?: 'LicenseActivationsConnectionEdge';
  cursor: Scalars['String']['output'];
  node: Activation;
};

export type LicenseCompliance = {
  __typename?: 'LicenseCompliance';
  activationThresholds: Array<Scalars['Int']['output']>;
  activationsUsed: Scalars['Int']['output'];
  /** Thresholds the license stands at or above now. */
  crossed: Array<ComplianceCrossing>;
  expiresAt?: Maybe<Scalars['DateTime']['output']>;
  /** Days before expiry at which compliance.license_expiring is raised. */
  expiringLeadDays: Array<Scalars['Int']['output']>;
  /** Active devices silent past the heartbeat interval plus the tolerance (not reclaimed yet). */
  heartbeatTimeouts: Scalars['Int']['output'];
  license: License;
  licenseId: Scalars['ID']['output'];
  maxActivations?: Maybe<Scalars['Int']['output']>;
  reasons: Array<Scalars['String']['output']>;
  seatThresholds: Array<Scalars['Int']['output']>;
  seats?: Maybe<Scalars['Int']['output']>;
  seatsInUse: Scalars['Int']['output'];
  status: ComplianceStatus;
};

export type LicenseIdInput = {
  licenseId: Scalars['ID']['input'];
};

export type LicenseInfo = {
  __typename?: 'LicenseInfo';
  activationsUsed: Scalars['Int']['output'];
  entitlements: Array<Entitlement>;
  expiresAt?: Maybe<Scalars['DateTime']['output']>;
  features: Array<Scalars['String']['output']>;
  /** A subscription with a grace period keeps serving the devices it has until then, past expiresAt. */
  graceEndsAt?: Maybe<Scalars['DateTime']['output']>;
  /** Expired (renewal pending) but still serving this device. */
  inGracePeriod: Scalars['Boolean']['output'];
  maxActivations?: Maybe<Scalars['Int']['output']>;
  revision: Scalars['Int']['output'];
  status: LicenseStatus;
  type: LicenseType;
};

export type LicenseLiveState = {
  __typename?: 'LicenseLiveState';
  activationsUsed: Scalars['Int']['output'];
  /** For a `device.heartbeat`: the device as it is after it (its last-seen, versions, host), to show it without reading the license again. */
  device?: Maybe<LiveDevice>;
  /** The event that changed it; null for the state sent on subscribe. */
  eventId?: Maybe<Scalars['ID']['output']>;
  eventOccurredAt?: Maybe<Scalars['DateTime']['output']>;
  eventType?: Maybe<Scalars['String']['output']>;
  licenseId: Scalars['ID']['output'];
  maxActivations?: Maybe<Scalars['Int']['output']>;
  revision: Scalars['Int']['output'];
  seats?: Maybe<Scalars['Int']['output']>;
  seatsInUse: Scalars['Int']['output'];
  state: Scalars['String']['output'];
};

export type LicenseStatus =
  | 'ACTIVE'
  | 'EXPIRED'
  | 'REVOKED'
  | 'SUSPENDED';

export type LicenseType =
  | 'FLOATING'
  | 'NODE_LOCKED'
  | 'PERPETUAL'
  | 'SITE'
  | 'SUBSCRIPTION'
  | 'TRIAL';

export type LicensingError = Error & {
  __typename?: 'LicensingError';
  code: LicensingErrorCode;
  message: Scalars['String']['output'];
};

export type LicensingErrorCode =
  | 'ACTIVATION_LIMIT_REACHED'
  | 'ACTIVATION_RELEASED'
  | 'FEATURE_NOT_ENTITLED'
  | 'FINGERPRINT_MISMATCH'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'INVALID_SIGNATURE'
  | 'LEASE_EXPIRED'
  | 'LEASE_NOT_FOUND'
  | 'LICENSE_EXPIRED'
  | 'LICENSE_NOT_FOUND'
  | 'LICENSE_NOT_YET_VALID'
  | 'LICENSE_REVOKED'
  | 'LICENSE_SUSPENDED'
  | 'NOT_ACTIVATED'
  | 'NO_SEATS_AVAILABLE'
  | 'OFFLINE_ACTIVATION_NOT_ALLOWED'
  | 'ONLINE_ACTIVATION_NOT_ALLOWED'
  | 'QUOTA_EXCEEDED'
  | 'RATE_LIMITED'
  | 'REQUEST_EXPIRED'
  | 'TICKET_ALREADY_COMMITTED'
  | 'TICKET_EXPIRED'
  | 'TOKEN_ALREADY_USED'
  | 'VERSION_NOT_ALLOWED';

export type LiveDevice = {
  __typename?: 'LiveDevice';
  appVersion?: Maybe<Scalars['String']['output']>;
  hostname?: Maybe<Scalars['String']['output']>;
  /** The Activation global id. */
  id: Scalars['ID']['output'];
  lastHeartbeatAt?: Maybe<Scalars['DateTime']['output']>;
  osVersion?: Maybe<Scalars['String']['output']>;
  platform?: Maybe<Scalars['String']['output']>;
};

export type Member = Node & {
  __typename?: 'Member';
  createdAt: Scalars['DateTime']['output'];
  email: Scalars['String']['output'];
  id: Scalars['ID']['output'];
  lastLoginAt?: Maybe<Scalars['DateTime']['output']>;
  name?: Maybe<Scalars['String']['output']>;
  role: Role;
};

export type Meter = Node & {
  __typename?: 'Meter';
  code: Scalars['String']['output'];
  id: Scalars['ID']['output'];
  name: Scalars['String']['output'];
  unit?: Maybe<Scalars['String']['output']>;
};

export type MeterEntitlement = {
  __typename?: 'MeterEntitlement';
  meter: Scalars['String']['output'];
  period: MeterPeriod;
  quota: Scalars['Int']['output'];
};

export type MeterEntitlementInput = {
  meter: Scalars['String']['input'];
  period: MeterPeriod;
  quota: Scalars['Int']['input'];
};

export type MeterPeriod =
  | 'DAY'
  | 'MONTH'
  | 'NONE'
  | 'YEAR';

export type Mutation = {
  __typename?: 'Mutation';
  activate: ActivateResult;
  /** Retires an edition: no new licenses are issued from it; those it issued keep working. */
  archiveEdition: ArchiveEditionResult;
  authorizeUsage: AuthorizeUsageResult;
  borrowSeat: BorrowSeatResult;
  /** Gives a member another role and ends the member's other sessions; a lower role revokes the API tokens made for them (ApiToken.createdBy) with a role above it. An ADMIN manages members below OWNER. */
  changeMemberRole: ChangeMemberRoleResult;
  /** The signed-in member's new password, given the current one. Their other sessions end; this one stays. Wrong current passwords count as failed sign-ins. */
  changePassword: ChangePasswordResult;
  checkoutSeat: CheckoutSeatResult;
  commitUsage: CommitUsageResult;
  createApiToken: CreateApiTokenResult;
  createCustomer: CreateCustomerResult;
  createEdition: CreateEditionResult;
  createFeature: CreateFeatureResult;
  createLicense: CreateLicenseResult;
  /** Adds a member who signs in to the console. An ADMIN adds members below OWNER; only an OWNER adds an owner. */
  createMember: CreateMemberResult;
  createMeter: CreateMeterResult;
  createProduct: CreateProductResult;
  createWebhookEndpoint: CreateWebhookEndpointResult;
  deactivate: DeactivateResult;
  /** Deletes a customer created by mistake; refused while any license was issued to it. */
  deleteCustomer: DeleteCustomerResult;
  /** Refused once a license was issued from the edition; archive it instead. */
  deleteEdition: DeleteEditionResult;
  /** Refused while an edition's or a license's features or entitlements name it. */
  deleteFeature: DeleteFeatureResult;
  /** Refused while an edition's or a license's meters name it, or usage of it is on record. */
  deleteMeter: DeleteMeterResult;
  /** Deletes a product with its editions, features and meters; refused while any license was issued for it. */
  deleteProduct: DeleteProductResult;
  deleteWebhookEndpoint: DeleteWebhookEndpointResult;
  heartbeat: HeartbeatResult;
  heartbeatSeat: HeartbeatSeatResult;
  importLicenses: ImportLicensesResult;
  /** Imports a deactivation file: frees the activation and records its offline usage, exactly once. */
  importOfflineDeactivation: ImportOfflineDeactivationResult;
  /** Issues a license file for an air-gapped machine; counts as an activation exactly like an online one. */
  issueOfflineLicense: IssueOfflineLicenseResult;
  /** Does nothing and returns true: the baseline that benchmarks compare operations with. */
  noop: Scalars['Boolean']['output'];
  recordUsage: RecordUsageResult;
  /** A new license file for an offline device after a renewal or entitlement change (current revision). */
  refreshOfflineLicense: RefreshOfflineLicenseResult;
  reinstateLicense: ReinstateLicenseResult;
  /** Frees a device's activation at once (lost machine, reinstall); its next call gets ACTIVATION_RELEASED. */
  releaseActivation: ReleaseActivationResult;
  /** Frees a floating seat before its lease ends (a crashed client, a user who left the app open); its holder's next heartbeat gets LEASE_EXPIRED and may check out again. A borrowed seat cannot be taken back (CONFLICT). */
  releaseLease: ReleaseLeaseResult;
  releaseSeat: ReleaseSeatResult;
  /** Gives an authorized ticket back without using it. */
  releaseUsage: ReleaseUsageResult;
  /** Removes a member, ends their sessions and revokes the API tokens made for them (ApiToken.createdBy); the last owner cannot be removed. */
  removeMember: RemoveMemberResult;
  renewLicense: RenewLicenseResult;
  /** Sends a delivery's event again now, as a new delivery with the same event id. */
  replayWebhookDelivery: ReplayWebhookDeliveryResult;
  /** Sets another member's password and ends all their sessions. */
  resetMemberPassword: ResetMemberPasswordResult;
  revokeApiToken: RevokeApiTokenResult;
  revokeLicense: RevokeLicenseResult;
  /** Signs with a new key from now on; tokens signed with earlier keys keep verifying against the JWKS. */
  rotateSigningKey: RotateSigningKeyResult;
  rotateWebhookSecret: RotateWebhookSecretResult;
  /** Queues a "webhook.test" event for the endpoint, sent at once; the delivery shows in its log. */
  sendTestWebhook: SendTestWebhookResult;
  /** Expiring-soon lead days (tenant default or per license) and the heartbeat tolerance; omitted fields keep their value. */
  setComplianceSettings: SetComplianceSettingsResult;
  /** Capacity thresholds that raise compliance.threshold_crossed events, once per crossing. */
  setComplianceThresholds: SetComplianceThresholdsResult;
  signIn: SignInResult;
  signOut: Scalars['Boolean']['output'];
  suspendLicense: SuspendLicenseResult;
  unarchiveEdition: UnarchiveEditionResult;
  /** Renames a customer or changes its email; fields not given keep their value. */
  updateCustomer: UpdateCustomerResult;
  /** Changes the terms licenses issued from now on start with; licenses already issued keep theirs. */
  updateEdition: UpdateEditionResult;
  updateFeature: UpdateFeatureResult;
  updateLicense: UpdateLicenseResult;
  updateMeter: UpdateMeterResult;
  updateProduct: UpdateProductResult;
  updateWebhookEndpoint: UpdateWebhookEndpointResult;
};


export type MutationActivateArgs = {
  input: ActivateInput;
};


export type MutationArchiveEditionArgs = {
  input: ArchiveEditionInput;
};


export type MutationAuthorizeUsageArgs = {
  input: AuthorizeUsageInput;
};


export type MutationBorrowSeatArgs = {
  input: BorrowSeatInput;
};


export type MutationChangeMemberRoleArgs = {
  input: ChangeMemberRoleInput;
};


export type MutationChangePasswordArgs = {
  input: ChangePasswordInput;
};


export type MutationCheckoutSeatArgs = {
  input: CheckoutSeatInput;
};


export type MutationCommitUsageArgs = {
  input: CommitUsageInput;
};


export type MutationCreateApiTokenArgs = {
  input: CreateApiTokenInput;
};


export type MutationCreateCustomerArgs = {
  input: CreateCustomerInput;
};


export type MutationCreateEditionArgs = {
  input: CreateEditionInput;
};


export type MutationCreateFeatureArgs = {
  input: CreateFeatureInput;
};


export type MutationCreateLicenseArgs = {
  input: CreateLicenseInput;
};


export type MutationCreateMemberArgs = {
  input: CreateMemberInput;
};


export type MutationCreateMeterArgs = {
  input: CreateMeterInput;
};


export type MutationCreateProductArgs = {
  input: CreateProductInput;
};


export type MutationCreateWebhookEndpointArgs = {
  input: CreateWebhookEndpointInput;
};


export type MutationDeactivateArgs = {
  input: DeactivateInput;
};


export type MutationDeleteCustomerArgs = {
  input: DeleteCustomerInput;
};


export type MutationDeleteEditionArgs = {
  input: DeleteEditionInput;
};


export type MutationDeleteFeatureArgs = {
  input: DeleteFeatureInput;
};


export type MutationDeleteMeterArgs = {
  input: DeleteMeterInput;
};


export type MutationDeleteProductArgs = {
  input: DeleteProductInput;
};


export type MutationDeleteWebhookEndpointArgs = {
  input: DeleteWebhookEndpointInput;
};


export type MutationHeartbeatArgs = {
  input: HeartbeatInput;
};


export type MutationHeartbeatSeatArgs = {
  input: LeaseInput;
};


export type MutationImportLicensesArgs = {
  input: ImportLicensesInput;
};


export type MutationImportOfflineDeactivationArgs = {
  input: ImportOfflineDeactivationInput;
};


export type MutationIssueOfflineLicenseArgs = {
  input: IssueOfflineLicenseInput;
};


export type MutationRecordUsageArgs = {
  input: AuthorizeUsageInput;
};


export type MutationRefreshOfflineLicenseArgs = {
  input: RefreshOfflineLicenseInput;
};


export type MutationReinstateLicenseArgs = {
  input: LicenseIdInput;
};


export type MutationReleaseActivationArgs = {
  input: ReleaseActivationInput;
};


export type MutationReleaseLeaseArgs = {
  input: ReleaseLeaseInput;
};


export type MutationReleaseSeatArgs = {
  input: LeaseInput;
};


export type MutationReleaseUsageArgs = {
  input: UsageTicketInput;
};


export type MutationRemoveMemberArgs = {
  input: RemoveMemberInput;
};


export type MutationRenewLicenseArgs = {
  input: RenewLicenseInput;
};


export type MutationReplayWebhookDeliveryArgs = {
  input: ReplayWebhookDeliveryInput;
};


export type MutationResetMemberPasswordArgs = {
  input: ResetMemberPasswordInput;
};


export type MutationRevokeApiTokenArgs = {
  input: RevokeApiTokenInput;
};


export type MutationRevokeLicenseArgs = {
  input: LicenseIdInput;
};


export type MutationRotateWebhookSecretArgs = {
  input: RotateWebhookSecretInput;
};


export type MutationSendTestWebhookArgs = {
  input: SendTestWebhookInput;
};


export type MutationSetComplianceSettingsArgs = {
  input: SetComplianceSettingsInput;
};


export type MutationSetComplianceThresholdsArgs = {
  input: SetComplianceThresholdsInput;
};


export type MutationSignInArgs = {
  input: SignInInput;
};


export type MutationSuspendLicenseArgs = {
  input: LicenseIdInput;
};


export type MutationUnarchiveEditionArgs = {
  input: UnarchiveEditionInput;
};


export type MutationUpdateCustomerArgs = {
  input: UpdateCustomerInput;
};


export type MutationUpdateEditionArgs = {
  input: UpdateEditionInput;
};


export type MutationUpdateFeatureArgs = {
  input: UpdateFeatureInput;
};


export type MutationUpdateLicenseArgs = {
  input: UpdateLicenseInput;
};


export type MutationUpdateMeterArgs = {
  input: UpdateMeterInput;
};


export type MutationUpdateProductArgs = {
  input: UpdateProductInput;
};


export type MutationUpdateWebhookEndpointArgs = {
  input: UpdateWebhookEndpointInput;
};

export type Node = {
  id: Scalars['ID']['output'];
};

export type NotFoundError = Error & {
  __typename?: 'NotFoundError';
  message: Scalars['String']['output'];
};

export type OfflineLicensePayload = {
  __typename?: 'OfflineLicensePayload';
  activation: Activation;
  /** Armored `-----BEGIN TESSERA LICENSE-----` file for the customer to install. */
  licenseFile: Scalars['String']['output'];
  /** True when the machine already held this activation (nothing new was consumed). */
  reused: Scalars['Boolean']['output'];
};

export type PageInfo = {
  __typename?: 'PageInfo';
  endCursor?: Maybe<Scalars['String']['output']>;
  hasNextPage: Scalars['Boolean']['output'];
  hasPreviousPage: Scalars['Boolean']['output'];
  startCursor?: Maybe<Scalars['String']['output']>;
};

export type Product = Node & {
  __typename?: 'Product';
  code: Scalars['String']['output'];
  createdAt: Scalars['DateTime']['output'];
  editions: Array<Edition>;
  features: Array<Feature>;
  id: Scalars['ID']['output'];
  meters: Array<Meter>;
  name: Scalars['String']['output'];
};

export type Provisioning =
  | 'FLOATING'
  | 'NAMED';

export type Query = {
  __typename?: 'Query';
  /** The tenant's device activations per calendar day over the last `days` days (today included), counted by the database. */
  activationsPerDay: ActivationsPerDayResult;
  /** The id of the caller's tenant's newest event: where `activity` and `complianceAlerts` start without `after`. A client that passes it as `after` misses nothing, also when no event has reached it before its socket was lost. Null while the tenant has no events. */
  activityCursor?: Maybe<Scalars['ID']['output']>;
  apiTokens: Array<ApiToken>;
  /** The caller's tenant's audit log, newest first. Bad arguments (both `type` and `types`, an empty or over-long `types`, a malformed pattern, a bad `licenseId`) are a BAD_USER_INPUT error, its extensions' `fields` saying which, before anything is read. The audit export (`/audit/export`) takes the same filters. */
  auditEvents: QueryAuditEventsConnection;
  /** The tenant's settings, or one license's (null when the license is not the caller's). */
  complianceSettings?: Maybe<ComplianceSettings>;
  /** Compliance of the tenant's licenses: all of them, one customer's, or one license. */
  complianceSummary: ComplianceSummary;
  customers: QueryCustomersConnection;
  /** Who runs what: the tenant's active devices (or one product's) by the app version, platform and OS version they last reported. */
  deviceInsights: DeviceInsightsResult;
  licenseByKey?: Maybe<License>;
  licenses: QueryLicensesConnection;
  members: Array<Member>;
  node?: Maybe<Node>;
  nodes: Array<Maybe<Node>>;
  products: Array<Product>;
  seatMap: SeatMapResult;
  /** Where a queued client stands; a client polls this (or checks out again) until a seat is free. */
  seatQueuePosition: SeatQueuePositionResult;
  /** The tenant's signing keys, newest first (public halves only), as published at /.well-known/jwks.json?tenant=<slug>. */
  signingKeys: Array<SigningKey>;
  tenant: Tenant;
  /** Usage balances re-derived from the ledger (the source of truth); the tenant's, or one license's. */
  usageReconciliation: UsageReconciliationResult;
  validateLicense: Validation;
  /** Recomputes the caller's tenant audit hash chain; reports the first broken entry. */
  verifyAuditChain: AuditChainVerification;
  /** The caller: its tenant and role; null when not signed in. */
  viewer?: Maybe<Viewer>;
  webhookEndpoint?: Maybe<WebhookEndpoint>;
  /** The tenant's webhook endpoints, newest first. */
  webhookEndpoints: QueryWebhookEndpointsConnection;
  /** The event types an endpoint can subscribe to (also "<resource>.*" and "*"). */
  webhookEventTypes: Array<Scalars['String']['output']>;
};


export type QueryActivationsPerDayArgs = {
  days?: InputMaybe<Scalars['Int']['input']>;
  timeZone?: InputMaybe<Scalars['String']['input']>;
};


export type QueryAuditEventsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  before?: InputMaybe<Scalars['String']['input']>;
  first?: InputMaybe<Scalars['Int']['input']>;
  last?: InputMaybe<Scalars['Int']['input']>;
  licenseId?: InputMaybe<Scalars['ID']['input']>;
  type?: InputMaybe<Scalars['String']['input']>;
  types?: InputMaybe<Array<Scalars['String']['input']>>;
};


export type QueryComplianceSettingsArgs = {
  licenseId?: InputMaybe<Scalars['ID']['input']>;
};


export type QueryComplianceSummaryArgs = {
  customerId?: InputMaybe<Scalars['ID']['input']>;
  licenseId?: InputMaybe<Scalars['ID']['input']>;
};


export type QueryCustomersArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  before?: InputMaybe<Scalars['String']['input']>;
  first?: InputMaybe<Scalars['Int']['input']>;
  last?: InputMaybe<Scalars['Int']['input']>;
  search?: InputMaybe<Scalars['String']['input']>;
};


export type QueryDeviceInsightsArgs = {
  productId?: InputMaybe<Scalars['ID']['input']>;
  seenWithinDays?: InputMaybe<Scalars['Int']['input']>;
};


export type QueryLicenseByKeyArgs = {
  key: Scalars['String']['input'];
};


export type QueryLicensesArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  before?: InputMaybe<Scalars['String']['input']>;
  customerId?: InputMaybe<Scalars['ID']['input']>;
  editionId?: InputMaybe<Scalars['ID']['input']>;
  expiringWithinDays?: InputMaybe<Scalars['Int']['input']>;
  first?: InputMaybe<Scalars['Int']['input']>;
  last?: InputMaybe<Scalars['Int']['input']>;
  productId?: InputMaybe<Scalars['ID']['input']>;
  search?: InputMaybe<Scalars['String']['input']>;
  status?: InputMaybe<LicenseStatus>;
};


export type QueryNodeArgs = {
  id: Scalars['ID']['input'];
};


export type QueryNodesArgs = {
  ids: Array<Scalars['ID']['input']>;
};


export type QuerySeatMapArgs = {
  licenseId: Scalars['ID']['input'];
};


export type QuerySeatQueuePositionArgs = {
  input: CheckoutSeatInput;
};


export type QueryUsageReconciliationArgs = {
  licenseId?: InputMaybe<Scalars['ID']['input']>;
};


export type QueryValidateLicenseArgs = {
  input: ValidateInput;
};


export type QueryWebhookEndpointArgs = {
  id: Scalars['ID']['input'];
};


export type QueryWebhookEndpointsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  before?: InputMaybe<Scalars['String']['input']>;
  first?: InputMaybe<Scalars['Int']['input']>;
  last?: InputMaybe<Scalars['Int']['input']>;
};

export type QueryAuditEventsConnection = {
  __typename?: 'QueryAuditEventsConnection';
  edges: Array<QueryAuditEventsConnectionEdge>;
  pageInfo: PageInfo;
};

export type QueryAuditEventsConnectionEdge = {
  __typename?: 'QueryAuditEventsConnectionEdge';
  cursor: Scalars['String']['output'];
  node: AuditEvent;
};

export type QueryCustomersConnection = {
  __typename?: 'QueryCustomersConnection';
  edges: Array<QueryCustomersConnectionEdge>;
  pageInfo: PageInfo;
};

export type QueryCustomersConnectionEdge = {
  __typename?: 'QueryCustomersConnectionEdge';
  cursor: Scalars['String']['output'];
  node: Customer;
};

export type QueryLicensesConnection = {
  __typename?: 'QueryLicensesConnection';
  edges: Array<QueryLicensesConnectionEdge>;
  pageInfo: PageInfo;
  totalCount: Scalars['Int']['output'];
};

export type QueryLicensesConnectionEdge = {
  __typename?: 'QueryLicensesConnectionEdge';
  cursor: Scalars['String']['output'];
  node: License;
};

export type QueryWebhookEndpointsConnection = {
  __typename?: 'QueryWebhookEndpointsConnection';
  edges: Array<QueryWebhookEndpointsConnectionEdge>;
  pageInfo: PageInfo;
  totalCount: Scalars['Int']['output'];
};

export type QueryWebhookEndpointsConnectionEdge = {
  __typename?: 'QueryWebhookEndpointsConnectionEdge';
  cursor: Scalars['String']['output'];
  node: WebhookEndpoint;
};

export type RecordUsageResult = LicensingError | UsageTicket | ValidationError;

export type RefreshOfflineLicenseInput = {
  activationId: Scalars['ID']['input'];
};

export type RefreshOfflineLicenseResult = ConflictError | LicensingError | NotFoundError | OfflineLicensePayload | ValidationError;

export type ReinstateLicenseResult = ConflictError | License | NotFoundError | ValidationError;

export type ReleaseActivationInput = {
  activationId: Scalars['ID']['input'];
};

export type ReleaseActivationResult = Activation | ConflictError | NotFoundError | ValidationError;

export type ReleaseLeaseInput = {
  /** A live lease's id, as the seat map lists it. */
  leaseId: Scalars['ID']['input'];
};

export type ReleaseLeaseResult = ConflictError | Lease | NotFoundError | ValidationError;

export type ReleaseSeatResult = LicensingError | SeatLease | ValidationError;

export type ReleaseUsageResult = LicensingError | UsageTicket | ValidationError;

export type RemoveMemberInput = {
  memberId: Scalars['ID']['input'];
};

export type RemoveMemberPayload = {
  __typename?: 'RemoveMemberPayload';
  deletedId: Scalars['ID']['output'];
};

export type RemoveMemberResult = ConflictError | NotFoundError | RemoveMemberPayload | ValidationError;

export type RenewLicenseInput = {
  expiresAt?: InputMaybe<Scalars['DateTime']['input']>;
  /** Days added to the current expiry (or to now, if it has lapsed). */
  extendDays?: InputMaybe<Scalars['Int']['input']>;
  licenseId: Scalars['ID']['input'];
  /** Convert, e.g. TRIAL -> SUBSCRIPTION. */
  licenseType?: InputMaybe<LicenseType>;
};

export type RenewLicenseResult = ConflictError | License | NotFoundError | ValidationError;

export type ReplayWebhookDeliveryInput = {
  id: Scalars['ID']['input'];
};

export type ReplayWebhookDeliveryResult = ConflictError | NotFoundError | ValidationError | WebhookDelivery;

export type ResetMemberPasswordInput = {
  memberId: Scalars['ID']['input'];
  password: Scalars['String']['input'];
};

export type ResetMemberPasswordResult = ConflictError | Member | NotFoundError | ValidationError;

export type RevokeApiTokenInput = {
  id: Scalars['ID']['input'];
};

export type RevokeApiTokenResult = ApiToken | ConflictError | NotFoundError | ValidationError;

export type RevokeLicenseResult = ConflictError | License | NotFoundError | ValidationError;

export type Role =
  | 'ADMIN'
  | 'OWNER'
  | 'READ_ONLY'
  | 'SUPPORT';

export type RotateSigningKeyResult = ConflictError | NotFoundError | SigningKey | ValidationError;

export type RotateWebhookSecretInput = {
  id: Scalars['ID']['input'];
  /** Also sign with the old secret for this long (0 to 168; default 0: retire it now). */
  keepPreviousForHours?: InputMaybe<Scalars['Int']['input']>;
};

export type RotateWebhookSecretPayload = {
  __typename?: 'RotateWebhookSecretPayload';
  endpoint: WebhookEndpoint;
  /** The signing secret (whsec_...). It cannot be shown again. */
  secret: Scalars['String']['output'];
};

export type RotateWebhookSecretResult = ConflictError | NotFoundError | RotateWebhookSecretPayload | ValidationError;

export type RowError = {
  __typename?: 'RowError';
  /** The column (CSV) or field (JSON lines) at fault; null when the line as a whole is (not valid JSON, a wrong number of columns). */
  field?: Maybe<Scalars['String']['output']>;
  line: Scalars['Int']['output'];
  /** What is wrong, in words; it starts with the field when there is one. */
  message: Scalars['String']['output'];
};

export type SeatGrouping =
  | 'DEPARTMENT'
  /** The device or user the seat is counted by. */
  | 'HOLDER'
  | 'USER';

/** Seat use of one device or user (per the license clientType) over a period. */
export type SeatHolderUsage = {
  __typename?: 'SeatHolderUsage';
  holder: Scalars['String']['output'];
  lastSeenAt: Scalars['DateTime']['output'];
  leases: Scalars['Int']['output'];
  secondsHeld: Scalars['Int']['output'];
};

export type SeatLease = {
  __typename?: 'SeatLease';
  borrowed: Scalars['Boolean']['output'];
  expiresAt: Scalars['DateTime']['output'];
  id: Scalars['ID']['output'];
  status: LeaseStatus;
  /** Compact JWS, typ "tessera-lease+jwt". */
  token: Scalars['String']['output'];
};

export type SeatMap = {
  __typename?: 'SeatMap';
  /** Seat use per UTC day and per holder, user or department over the last `days` days (1 to 90), newest day first. */
  breakdown: Array<SeatUsageBucket>;
  /** Who held seats in the last `days` days and for how long, most first (at most 200). */
  holders: Array<SeatHolderUsage>;
  inUse: Scalars['Int']['output'];
  leaseSeconds: Scalars['Int']['output'];
  /** Live leases, oldest first. */
  leases: Array<Lease>;
  /** Waiting clients, head first. */
  queue: Array<SeatQueueEntry>;
  seats?: Maybe<Scalars['Int']['output']>;
  /** Peak concurrent use, grants and denials per UTC day, newest first. */
  usage: Array<SeatUsageDay>;
};


export type SeatMapBreakdownArgs = {
  days?: InputMaybe<Scalars['Int']['input']>;
  groupBy?: InputMaybe<SeatGrouping>;
};


export type SeatMapHoldersArgs = {
  days?: InputMaybe<Scalars['Int']['input']>;
};


export type SeatMapUsageArgs = {
  days?: InputMaybe<Scalars['Int']['input']>;
};

export type SeatMapResult = ConflictError | NotFoundError | SeatMap | ValidationError;

export type SeatQueueEntry = {
  __typename?: 'SeatQueueEntry';
  enqueuedAt: Scalars['DateTime']['output'];
  expiresAt: Scalars['DateTime']['output'];
  fingerprint: Scalars['String']['output'];
  holder: Scalars['String']['output'];
  user?: Maybe<Scalars['String']['output']>;
};

export type SeatQueuePosition = {
  __typename?: 'SeatQueuePosition';
  expiresAt?: Maybe<Scalars['DateTime']['output']>;
  position?: Maybe<Scalars['Int']['output']>;
  queued: Scalars['Boolean']['output'];
};

export type SeatQueuePositionResult = LicensingError | SeatQueuePosition | ValidationError;

export type SeatQueued = {
  __typename?: 'SeatQueued';
  /** The place is dropped unless the client checks out again (or polls) before this. */
  expiresAt: Scalars['DateTime']['output'];
  /** 1 is the head of the queue: it gets the next free seat. */
  position: Scalars['Int']['output'];
};

/** Seat use of one holder, user or department on one UTC day. */
export type SeatUsageBucket = {
  __typename?: 'SeatUsageBucket';
  /** YYYY-MM-DD (UTC). */
  day: Scalars['String']['output'];
  /** The holder, user or department; null when the client reported none. */
  key?: Maybe<Scalars['String']['output']>;
  /** Leases granted that day. */
  leases: Scalars['Int']['output'];
  /** Most seats held at once within that day. */
  peakConcurrent: Scalars['Int']['output'];
  /** Seat time held within that day. */
  secondsHeld: Scalars['Int']['output'];
};

export type SeatUsageDay = {
  __typename?: 'SeatUsageDay';
  /** UTC day, YYYY-MM-DD. */
  day: Scalars['String']['output'];
  /** Checkouts refused with NO_SEATS_AVAILABLE. */
  denials: Scalars['Int']['output'];
  granted: Scalars['Int']['output'];
  /** Most leases held at once that day. */
  peak: Scalars['Int']['output'];
};

export type SendTestWebhookInput = {
  id: Scalars['ID']['input'];
};

export type SendTestWebhookResult = ConflictError | NotFoundError | ValidationError | WebhookDelivery;

export type SetComplianceSettingsInput = {
  /** Whole days from 1 to 365, at most 10, e.g. [30, 7, 1]; [] turns the alerts off. */
  expiringLeadDays?: InputMaybe<Array<Scalars['Int']['input']>>;
  /** Tenant-wide, 0 to 1000. */
  heartbeatTolerancePercent?: InputMaybe<Scalars['Int']['input']>;
  /** The license whose own lead days to set; omitted for the tenant's. */
  licenseId?: InputMaybe<Scalars['ID']['input']>;
};

export type SetComplianceSettingsResult = ComplianceSettings | ConflictError | NotFoundError | ValidationError;

export type SetComplianceThresholdsInput = {
  /** The license; omitted for the tenant's default. */
  licenseId?: InputMaybe<Scalars['ID']['input']>;
  metric: ComplianceMetric;
  /** Percent of the cap, e.g. [80, 100]. */
  percents: Array<Scalars['Int']['input']>;
};

export type SetComplianceThresholdsResult = ComplianceThresholds | ConflictError | NotFoundError | ValidationError;

export type SignInInput = {
  email: Scalars['String']['input'];
  password: Scalars['String']['input'];
  /** Tenant slug */
  tenant: Scalars['String']['input'];
};

export type SignInResult = SignInSuccess | ValidationError;

export type SignInSuccess = {
  __typename?: 'SignInSuccess';
  memberId: Scalars['ID']['output'];
  tenantId: Scalars['ID']['output'];
};

export type SigningKey = {
  __typename?: 'SigningKey';
  algorithm: Scalars['String']['output'];
  createdAt: Scalars['DateTime']['output'];
  id: Scalars['ID']['output'];
  kid: Scalars['String']['output'];
  publicJwk: Scalars['JSON']['output'];
  /** When a newer key took over signing; a retired key stays published so old tokens keep verifying. */
  retiredAt?: Maybe<Scalars['DateTime']['output']>;
};

export type Subscription = {
  __typename?: 'Subscription';
  /** Every domain event of the caller's tenant, in order. With `after`, the events after that one first (from the audit log), then live ones. */
  activity: ActivityEvent;
  /** The compliance.* events of the tenant (thresholds crossed, goodwill use, ...); resumable like activity. */
  complianceAlerts: ActivityEvent;
  /** The license's activation and seat counters: now, then after every event about the license. */
  licenseLive: LicenseLiveState;
};


export type SubscriptionActivityArgs = {
  after?: InputMaybe<Scalars['ID']['input']>;
  filter?: InputMaybe<ActivityFilter>;
};


export type SubscriptionComplianceAlertsArgs = {
  after?: InputMaybe<Scalars['ID']['input']>;
  licenseId?: InputMaybe<Scalars['ID']['input']>;
};


export type SubscriptionLicenseLiveArgs = {
  licenseId: Scalars['ID']['input'];
};

export type SuspendLicenseResult = ConflictError | License | NotFoundError | ValidationError;

export type SyncState =
  | 'PENDING_SYNC'
  | 'SYNCED';

export type Tenant = {
  __typename?: 'Tenant';
  createdAt: Scalars['DateTime']['output'];
  id: Scalars['ID']['output'];
  name: Scalars['String']['output'];
  slug: Scalars['String']['output'];
};

export type TokenKey = {
  __typename?: 'TokenKey';
  createdAt: Scalars['DateTime']['output'];
  id: Scalars['ID']['output'];
  key: Scalars['String']['output'];
  usedAt?: Maybe<Scalars['DateTime']['output']>;
};

export type UnarchiveEditionInput = {
  editionId: Scalars['ID']['input'];
};

export type UnarchiveEditionResult = ConflictError | Edition | NotFoundError | ValidationError;

export type UpdateCustomerInput = {
  customerId: Scalars['ID']['input'];
  /** Empty clears it. */
  email?: InputMaybe<Scalars['String']['input']>;
  name?: InputMaybe<Scalars['String']['input']>;
};

export type UpdateCustomerResult = ConflictError | Customer | NotFoundError | ValidationError;

/** Terms not given keep their value. Licenses already issued keep the terms they were issued with. */
export type UpdateEditionInput = {
  allowOffline?: InputMaybe<Scalars['Boolean']['input']>;
  /** A semver range, e.g. ">=2.0.0 <3.0.0". */
  allowedVersions?: InputMaybe<Scalars['String']['input']>;
  clientType?: InputMaybe<ClientType>;
  deploymentMode?: InputMaybe<DeploymentMode>;
  editionId: Scalars['ID']['input'];
  /** Numeric entitlements (at most 100). A feature is either in `features` (on/off) or here (with a limit), not both. */
  entitlements?: InputMaybe<Array<EntitlementInput>>;
  features?: InputMaybe<Array<Scalars['String']['input']>>;
  fingerprintMatch?: InputMaybe<FingerprintMatch>;
  /** Activations allowed beyond maxActivations (soft limit); each raises a compliance event. */
  goodwillActivations?: InputMaybe<Scalars['Int']['input']>;
  /** SUBSCRIPTION only: how long past expiry the devices and seats it serves keep working (renewal pending). */
  gracePeriodSeconds?: InputMaybe<Scalars['Int']['input']>;
  heartbeatSeconds?: InputMaybe<Scalars['Int']['input']>;
  inactivityReclaimSeconds?: InputMaybe<Scalars['Int']['input']>;
  leaseSeconds?: InputMaybe<Scalars['Int']['input']>;
  licenseType?: InputMaybe<LicenseType>;
  maxActivations?: InputMaybe<Scalars['Int']['input']>;
  meters?: InputMaybe<Array<MeterEntitlementInput>>;
  name?: InputMaybe<Scalars['String']['input']>;
  provisioning?: InputMaybe<Provisioning>;
  seats?: InputMaybe<Scalars['Int']['input']>;
  /** Days a license is valid from issue; null = perpetual. */
  validityDays?: InputMaybe<Scalars['Int']['input']>;
};

export type UpdateEditionResult = ConflictError | Edition | NotFoundError | ValidationError;

export type UpdateFeatureInput = {
  /** Null or empty clears it. */
  description?: InputMaybe<Scalars['String']['input']>;
  featureId: Scalars['ID']['input'];
  name?: InputMaybe<Scalars['String']['input']>;
};

export type UpdateFeatureResult = ConflictError | Feature | NotFoundError | ValidationError;

export type UpdateLicenseInput = {
  allowOffline?: InputMaybe<Scalars['Boolean']['input']>;
  /** A semver range, e.g. ">=2.0.0 <3.0.0". */
  allowedVersions?: InputMaybe<Scalars['String']['input']>;
  clientType?: InputMaybe<ClientType>;
  customerId?: InputMaybe<Scalars['ID']['input']>;
  deploymentMode?: InputMaybe<DeploymentMode>;
  /** Numeric entitlements (at most 100). A feature is either in `features` (on/off) or here (with a limit), not both. */
  entitlements?: InputMaybe<Array<EntitlementInput>>;
  /** Fixed expiry; replaces the edition validity. */
  expiresAt?: InputMaybe<Scalars['DateTime']['input']>;
  features?: InputMaybe<Array<Scalars['String']['input']>>;
  fingerprintMatch?: InputMaybe<FingerprintMatch>;
  /** Activations allowed beyond maxActivations (soft limit); each raises a compliance event. */
  goodwillActivations?: InputMaybe<Scalars['Int']['input']>;
  /** SUBSCRIPTION only: how long past expiry the devices and seats it serves keep working (renewal pending). */
  gracePeriodSeconds?: InputMaybe<Scalars['Int']['input']>;
  heartbeatSeconds?: InputMaybe<Scalars['Int']['input']>;
  inactivityReclaimSeconds?: InputMaybe<Scalars['Int']['input']>;
  leaseSeconds?: InputMaybe<Scalars['Int']['input']>;
  licenseId: Scalars['ID']['input'];
  maxActivations?: InputMaybe<Scalars['Int']['input']>;
  metadata?: InputMaybe<Scalars['JSON']['input']>;
  meters?: InputMaybe<Array<MeterEntitlementInput>>;
  name?: InputMaybe<Scalars['String']['input']>;
  provisioning?: InputMaybe<Provisioning>;
  seats?: InputMaybe<Scalars['Int']['input']>;
  startsAt?: InputMaybe<Scalars['DateTime']['input']>;
};

export type UpdateLicenseResult = ConflictError | License | NotFoundError | ValidationError;

export type UpdateMeterInput = {
  meterId: Scalars['ID']['input'];
  name?: InputMaybe<Scalars['String']['input']>;
  /** Null or empty clears it. */
  unit?: InputMaybe<Scalars['String']['input']>;
};

export type UpdateMeterResult = ConflictError | Meter | NotFoundError | ValidationError;

export type UpdateProductInput = {
  /** Must stay unique in the tenant. */
  code?: InputMaybe<Scalars['String']['input']>;
  name?: InputMaybe<Scalars['String']['input']>;
  productId: Scalars['ID']['input'];
};

export type UpdateProductResult = ConflictError | NotFoundError | Product | ValidationError;

export type UpdateWebhookEndpointInput = {
  /** An empty string clears it. */
  description?: InputMaybe<Scalars['String']['input']>;
  /** A disabled endpoint receives nothing; re-enabled, it receives the events raised from then on (and its pending deliveries), and its consecutiveFailures starts again from 0. */
  enabled?: InputMaybe<Scalars['Boolean']['input']>;
  /** Replaces the list; [] or ["*"]: every event. */
  eventTypes?: InputMaybe<Array<Scalars['String']['input']>>;
  id: Scalars['ID']['input'];
  /** With enabled: true on a disabled endpoint: also send the events of its types raised while it was disabled (missedEvents), oldest first. Refused when more than 50,000 events were raised since. */
  sendMissed?: InputMaybe<Scalars['Boolean']['input']>;
  /** A new URL starts consecutiveFailures again from 0 (the failures counted were against the old one). */
  url?: InputMaybe<Scalars['String']['input']>;
};

export type UpdateWebhookEndpointResult = ConflictError | NotFoundError | ValidationError | WebhookEndpoint;

/** One balance row beside what the append-only ledger and the open tickets say it must hold. */
export type UsageBalanceCheck = {
  __typename?: 'UsageBalanceCheck';
  consistent: Scalars['Boolean']['output'];
  /** Sum of the ledger entries of this window. */
  ledgerUsed: Scalars['Int']['output'];
  licenseId: Scalars['ID']['output'];
  meter: Scalars['String']['output'];
  /** Sum of the AUTHORIZED tickets of this window. */
  openReserved: Scalars['Int']['output'];
  quota: Scalars['Int']['output'];
  reserved: Scalars['Int']['output'];
  used: Scalars['Int']['output'];
  window: Scalars['String']['output'];
};

export type UsageReconciliation = {
  __typename?: 'UsageReconciliation';
  balances: Array<UsageBalanceCheck>;
  consistent: Scalars['Boolean']['output'];
};

export type UsageReconciliationResult = ConflictError | NotFoundError | UsageReconciliation | ValidationError;

export type UsageTicket = {
  __typename?: 'UsageTicket';
  authorized: Scalars['Int']['output'];
  /** An AUTHORIZED ticket must be committed before this. */
  expiresAt?: Maybe<Scalars['DateTime']['output']>;
  id: Scalars['ID']['output'];
  meter: Scalars['String']['output'];
  /** The committed quantity once COMMITTED; the authorized one before. */
  quantity: Scalars['Int']['output'];
  /** Compact JWS signed by the tenant key. */
  receipt: Scalars['String']['output'];
  /** Quota left in the window right after this operation. */
  remaining?: Maybe<Scalars['Int']['output']>;
  status: UsageTicketStatus;
  /** The quota period the use counts in: "all", "YYYY", "YYYY-MM" or "YYYY-MM-DD" (UTC). */
  window: Scalars['String']['output'];
};

export type UsageTicketInput = {
  key: Scalars['String']['input'];
  ticketId: Scalars['ID']['input'];
};

export type UsageTicketStatus =
  | 'AUTHORIZED'
  | 'COMMITTED'
  | 'EXPIRED'
  | 'RELEASED';

export type ValidateInput = {
  feature?: InputMaybe<Scalars['String']['input']>;
  fingerprint?: InputMaybe<Scalars['String']['input']>;
  key: Scalars['String']['input'];
  /** With `feature`: the amount wanted of a numeric entitlement ("may I have 12 projects?"); valid when it is at most the limit, else FEATURE_NOT_ENTITLED. */
  quantity?: InputMaybe<Scalars['Int']['input']>;
  version?: InputMaybe<Scalars['String']['input']>;
};

export type Validation = {
  __typename?: 'Validation';
  code?: Maybe<LicensingErrorCode>;
  license?: Maybe<LicenseInfo>;
  valid: Scalars['Boolean']['output'];
};

export type ValidationError = Error & {
  __typename?: 'ValidationError';
  fields: Array<FieldError>;
  message: Scalars['String']['output'];
};

export type Viewer = {
  __typename?: 'Viewer';
  memberId?: Maybe<Scalars['ID']['output']>;
  role: Role;
  tenantId: Scalars['ID']['output'];
};

export type WebhookAttempt = {
  __typename?: 'WebhookAttempt';
  durationMs: Scalars['Int']['output'];
  error?: Maybe<Scalars['String']['output']>;
  number: Scalars['Int']['output'];
  /** The start of the response body (2 KB at most). Needs SUPPORT. */
  responseBody?: Maybe<Scalars['String']['output']>;
  responseStatus?: Maybe<Scalars['Int']['output']>;
  startedAt: Scalars['DateTime']['output'];
  succeeded: Scalars['Boolean']['output'];
};

export type WebhookDelivery = Node & {
  __typename?: 'WebhookDelivery';
  attemptLog: Array<WebhookAttempt>;
  /** Attempts made so far. */
  attempts: Scalars['Int']['output'];
  /** The JSON body sent. Needs SUPPORT (it carries the event, as the audit log does). */
  body?: Maybe<Scalars['String']['output']>;
  completedAt?: Maybe<Scalars['DateTime']['output']>;
  createdAt: Scalars['DateTime']['output'];
  endpoint: WebhookEndpoint;
  /** Sent as Tessera-Event-Id; the same for retries and replays of one event. */
  eventId: Scalars['String']['output'];
  /** The event's position in the tenant audit chain; null for tests. */
  eventSeq?: Maybe<Scalars['Int']['output']>;
  eventType: Scalars['String']['output'];
  id: Scalars['ID']['output'];
  lastAttemptAt?: Maybe<Scalars['DateTime']['output']>;
  lastDurationMs?: Maybe<Scalars['Int']['output']>;
  lastError?: Maybe<Scalars['String']['output']>;
  /** The start of the last response body (2 KB at most). Needs SUPPORT. */
  lastResponseBody?: Maybe<Scalars['String']['output']>;
  lastResponseStatus?: Maybe<Scalars['Int']['output']>;
  nextAttemptAt?: Maybe<Scalars['DateTime']['output']>;
  replayOfId?: Maybe<Scalars['ID']['output']>;
  status: WebhookDeliveryStatus;
};

export type WebhookDeliveryStatus =
  /** Every attempt failed; replay it to try again. */
  | 'FAILED'
  /** Not delivered yet: waiting for its first attempt or a retry. */
  | 'PENDING'
  /** The endpoint answered 2xx. */
  | 'SUCCEEDED';

export type WebhookDisabledReason =
  /** Disabled automatically: consecutiveFailures deliveries in a row failed after their last attempt (TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES). */
  | 'DELIVERY_FAILURES'
  /** Disabled by a member or an API token. */
  | 'MANUAL';

export type WebhookEndpoint = Node & {
  __typename?: 'WebhookEndpoint';
  /** Deliveries that failed after their last attempt in a row, with no success between, while enabled. At the server's limit (TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES) the endpoint is disabled; re-enabling it or changing its url resets this to 0 (changing its description or event types does not). */
  consecutiveFailures: Scalars['Int']['output'];
  createdAt: Scalars['DateTime']['output'];
  /** Newest first. */
  deliveries: WebhookEndpointDeliveriesConnection;
  description?: Maybe<Scalars['String']['output']>;
  /** When it was disabled; null while enabled (and for one disabled before this was recorded). */
  disabledAt?: Maybe<Scalars['DateTime']['output']>;
  /** Why it is disabled; null while enabled. */
  disabledReason?: Maybe<WebhookDisabledReason>;
  enabled: Scalars['Boolean']['output'];
  /** Event types or "<resource>.*" patterns; empty or ["*"]: every event. */
  eventTypes: Array<Scalars['String']['output']>;
  id: Scalars['ID']['output'];
  /** While disabled: the events of its types raised since it stopped receiving, which enabling it with sendMissed sends; null while enabled, and when more than 50,000 events were raised since (too many to send again). */
  missedEvents?: Maybe<Scalars['Int']['output']>;
  /** Until then deliveries are signed with the previous secret too (after a rotation that kept it). */
  previousSecretExpiresAt?: Maybe<Scalars['DateTime']['output']>;
  /** The first characters of the signing secret; the secret itself is shown once. */
  secretPrefix: Scalars['String']['output'];
  updatedAt: Scalars['DateTime']['output'];
  url: Scalars['String']['output'];
};


export type WebhookEndpointDeliveriesArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  before?: InputMaybe<Scalars['String']['input']>;
  first?: InputMaybe<Scalars['Int']['input']>;
  last?: InputMaybe<Scalars['Int']['input']>;
  status?: InputMaybe<WebhookDeliveryStatus>;
};

export type WebhookEndpointDeliveriesConnection = {
  __typename?: 'WebhookEndpointDeliveriesConnection';
  edges: Array<WebhookEndpointDeliveriesConnectionEdge>;
  pageInfo: PageInfo;
  totalCount: Scalars['Int']['output'];
};

export type WebhookEndpointDeliveriesConnectionEdge = {
  __typename?: 'WebhookEndpointDeliveriesConnectionEdge';
  cursor: Scalars['String']['output'];
  node: WebhookDelivery;
};
