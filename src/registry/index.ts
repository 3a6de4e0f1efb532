/** The registry: server, its store (SQLite here; the interface in store-api.ts), and the client the daemon uses. */
export { RegistryServer, type RegistryServerOptions, type RegistryServerStats } from './server.js'
export type { RegistryStore, RegistryTx, NetworkTx, StoreKind } from './store-api.js'
export {
  SqliteRegistryStore,
  type SqliteRegistryStoreOptions,
  type NodeRecord,
  type TrustPairRecord,
  type TrustOrigin,
  type HandshakeRequestRecord,
  type HandshakeResponseRecord,
  type BeaconRecord,
} from './store.js'
export { SCHEMA_VERSION } from './schema.js'
export {
  RegistryClient,
  DEFAULT_RECONNECT_POLICY,
  type RegistryClientOptions,
  type ReconnectPolicy,
  type RegisterResult,
  type LookupResult,
  type PoloScore,
  type HandshakeInbox,
} from './client.js'
export { RegistryError, RegistryErrorCode, NetworkErrorCode, NETWORK_ERROR_HINTS, isNetworkErrorCode } from './errors.js'
export { auditEntryHash, verifyAuditChain } from './audit-chain.js'
export { encodeInviteText, decodeInviteText, INVITE_TEXT_PREFIX } from './invite-text.js'
export { canonicalPolicy, isNetworkName } from './network-wire.js'
export { NetworkStore, type NetworkRecord, type MemberRecord, type InviteRecord } from './network-store.js'
export { NetworkRequests, REPLAY_WINDOW_S } from './networks.js'
export * from './network-types.js'
export { RegistryChallenge } from './challenges.js'
export { DEFAULT_REGISTRY_LIMITS, type RegistryLimits } from './limits.js'
export { RegistryRequestHandler, type RequestOrigin, type HandledRequest } from './request-handler.js'
export type { RejectReason } from './request-fields.js'
export { startRegistry, type RunningRegistry, type StartRegistryOptions } from './start.js'
