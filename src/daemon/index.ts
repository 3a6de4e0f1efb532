/**
 * Public API of daemon/: what the control socket, the CLI (`up`) and the TUN
 * bridge use. `Daemon.start(options)` builds and starts a node; it implements
 * `DaemonControl` (api.ts); `close()` stops it.
 */
export { Daemon, type DaemonStats } from './daemon.js'
export {
  DEFAULT_DAEMON_TIMING,
  parseHostPortOption,
  parseListenOption,
  formatUdpEndpoint,
  type DaemonOptions,
  type DaemonTiming,
} from './options.js'
export type { ReceivedDatagram } from './node-streams.js'
export type * from './api.js'
export { DaemonError, DaemonErrorCode } from './errors.js'
export { PilotStream } from './pilot-stream.js'
export { ECHO_PORT } from './services.js'
export { TRUST_PORT } from './trust-service.js'
