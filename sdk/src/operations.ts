/**
 * The client operations the SDK sends. `pnpm generate` hashes them into
 * schema/persisted-operations.json (the server's allow-list) and sdk/src/generated/persisted.ts;
 * the SDK then sends only the hash.
 */
const ERROR_FIELDS = `... on LicensingError { code message } ... on ValidationError { message fields { path message } }`;
const LICENSE_INFO = `license { status type expiresAt revision maxActivations activationsUsed features entitlements { feature limit } }`;
const ACTIVATION = `activation { id status fingerprint activatedAt lastHeartbeatAt ${LICENSE_INFO} }`;
const LEASE = `... on SeatLease { id expiresAt token }`;
const TICKET = `... on UsageTicket { id status quantity remaining expiresAt receipt }`;

export const OPERATIONS = {
  /** Round trip through the whole API stack without touching a license: connectivity checks, benchmarks. */
  Ping: `mutation Ping { noop }`,
  Activate: `mutation Activate($input: ActivateInput!) { activate(input: $input) { __typename ... on ActivateSuccess { token reused goodwill ${ACTIVATION} } ${ERROR_FIELDS} } }`,
  Heartbeat: `mutation Heartbeat($input: HeartbeatInput!) { heartbeat(input: $input) { __typename ... on HeartbeatSuccess { updateAvailable token nextHeartbeatBy ${ACTIVATION} } ${ERROR_FIELDS} } }`,
  Deactivate: `mutation Deactivate($input: DeactivateInput!) { deactivate(input: $input) { __typename ... on DeactivateSuccess { ${ACTIVATION} } ${ERROR_FIELDS} } }`,
  ValidateLicense: `query ValidateLicense($input: ValidateInput!) { validateLicense(input: $input) { valid code ${LICENSE_INFO} } }`,
  CheckoutSeat: `mutation CheckoutSeat($input: CheckoutSeatInput!) { checkoutSeat(input: $input) { __typename ${LEASE} ... on SeatQueued { position } ${ERROR_FIELDS} } }`,
  HeartbeatSeat: `mutation HeartbeatSeat($input: LeaseInput!) { heartbeatSeat(input: $input) { __typename ${LEASE} ${ERROR_FIELDS} } }`,
  ReleaseSeat: `mutation ReleaseSeat($input: LeaseInput!) { releaseSeat(input: $input) { __typename ${LEASE} ${ERROR_FIELDS} } }`,
  AuthorizeUsage: `mutation AuthorizeUsage($input: AuthorizeUsageInput!) { authorizeUsage(input: $input) { __typename ${TICKET} ${ERROR_FIELDS} } }`,
  CommitUsage: `mutation CommitUsage($input: CommitUsageInput!) { commitUsage(input: $input) { __typename ${TICKET} ${ERROR_FIELDS} } }`,
  RecordUsage: `mutation RecordUsage($input: AuthorizeUsageInput!) { recordUsage(input: $input) { __typename ${TICKET} ${ERROR_FIELDS} } }`,
} as const;

export type OperationName = keyof typeof OPERATIONS;
