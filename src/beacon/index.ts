/** The beacon server: endpoint discovery, hole-punch coordination and relay (docs/wire.md §9). */
export { BeaconServer, type BeaconServerOptions } from './server.js'
export { DEFAULT_BEACON_LIMITS, resolveBeaconLimits, type BeaconLimits } from './limits.js'
export {
  BEACON_DROP_REASONS,
  type BeaconDropReason,
  type BeaconReceivedCounts,
  type BeaconSentCounts,
  type BeaconStats,
} from './stats.js'
export { BeaconError, BeaconErrorCode } from './errors.js'
