/** The session layer: stream connections, the port multiplexer, datagrams and ping. */
export * from './types.js'
export * from './seq.js'
export * from './errors.js'
export * from './congestion.js'
export * from './stream.js'
export * from './endpoint.js'
export { warmUpSessions } from './warm-up.js'
