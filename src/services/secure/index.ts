/**
 * Public API of the port-443 secure channel (docs/wire.md §13.6): the pure
 * core, the Duplex over a stream (`secureClient`, `secureServer`), and the
 * daemon-side service behind `pilot-tun secure send|listen`.
 */
export { SecureError, SecureErrorCode } from './errors.js'
export {
  ROLE_PREFIX,
  SECURE_HELLO_SIZE,
  SECURE_KDFS,
  SECURE_MAX_FRAME,
  SECURE_MAX_PLAINTEXT,
  SECURE_MIN_FRAME,
  SECURE_PORT,
  SecureFrameDecoder,
  SecureHandshake,
  SecureSession,
  type SecureKdf,
  type SecureRole,
  type SecureSessionOptions,
} from './secure-core.js'
export { SECURE_HANDSHAKE_TIMEOUT_MS, SecureStream, secureClient, secureServer, type SecureStreamOptions } from './secure-stream.js'
export {
  MAX_LISTEN_CHANNELS,
  SecureService,
  type SecureControl,
  type SecureListenOptions,
  type SecureListenResult,
  type SecureMessageEvent,
  type SecureSendOptions,
  type SecureSendResult,
} from './secure-service.js'
