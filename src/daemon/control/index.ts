/** Public API of the control socket: server (daemon side), client (CLI side), protocol. */
export { ControlServer, probeSocket, type ControlServerOptions, type ControlServerStats } from './server.js'
export { ControlClient, callDaemon, DEFAULT_CONTROL_SOCKET, DEFAULT_CALL_TIMEOUT_MS } from './client.js'
export {
  CONTROL_MAX_MESSAGE,
  CONTROL_METHODS,
  ControlError,
  ControlErrorCode,
  DEFAULT_PING_TIMEOUT_MS,
  PARAM_LIMITS,
  type ControlMethod,
  type ControlParams,
  type ControlResults,
  type ControlRequest,
  type ControlResponse,
} from './protocol.js'
