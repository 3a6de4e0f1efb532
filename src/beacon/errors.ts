/** Typed errors of the beacon server (control plane only: a bad datagram is a counter, never a throw). */
import { PilotError } from '../errors.js'

export const BeaconErrorCode = {
  /** A `BeaconLimits` value is not a positive number. */
  INVALID_LIMITS: 'PT_BEACON_INVALID_LIMITS',
  /** `--listen` is not HOST:PORT. */
  INVALID_LISTEN: 'PT_BEACON_INVALID_LISTEN',
  /** The UDP socket could not be bound (port taken, address not local). */
  LISTEN_FAILED: 'PT_BEACON_LISTEN_FAILED',
  /** `start()` on a server that was closed or already started. */
  BAD_STATE: 'PT_BEACON_BAD_STATE',
  /** `--peers`, `--beacon-id`, `--advertise` or `--registry` of a clustered beacon is unusable. */
  INVALID_CLUSTER: 'PT_BEACON_INVALID_CLUSTER',
  /** The registry round (beacon_register + beacon_list) failed; retried at the next round. */
  REGISTRY_FAILED: 'PT_BEACON_REGISTRY_FAILED',
} as const
export type BeaconErrorCode = (typeof BeaconErrorCode)[keyof typeof BeaconErrorCode]

export class BeaconError extends PilotError {
  declare readonly code: BeaconErrorCode

  constructor(code: BeaconErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options)
  }
}
