/**
 * Typed errors of the TUN edge (control plane only: opening, configuring and
 * closing the device). A bad packet on the data path is a counter, never one
 * of these.
 */
import { PilotError } from '../errors.js'

export const TunErrorCode = {
  /** build/Release/pilot_tun_native.node is absent (install skipped, or not Linux). */
  ADDON_MISSING: 'PT_TUN_ADDON_MISSING',
  /** Not root and no CAP_NET_ADMIN: cannot create the TUN or change links, addresses or routes. */
  PERMISSION: 'PT_TUN_PERMISSION',
  /** The interface name is taken (a running pilot-tun, another program, or a stale link). */
  IN_USE: 'PT_TUN_IN_USE',
  /** /dev/net/tun is missing or unusable. */
  UNAVAILABLE: 'PT_TUN_UNAVAILABLE',
  /** An `ip` (iproute2) command failed; the message quotes the command and its stderr. */
  IP_COMMAND_FAILED: 'PT_TUN_IP_COMMAND_FAILED',
  /** The reader thread stopped: the interface was deleted under us, or a read failed. */
  READER_FAILED: 'PT_TUN_READER_FAILED',
  /** A packet handler threw; the packets of that batch after the throw were not seen. */
  HANDLER_FAILED: 'PT_TUN_HANDLER_FAILED',
  /** The device was used after close(). */
  CLOSED: 'PT_TUN_CLOSED',
  /** Bad options (name, MTU, address, prefix). */
  INVALID_OPTIONS: 'PT_TUN_INVALID_OPTIONS',
} as const
export type TunErrorCode = (typeof TunErrorCode)[keyof typeof TunErrorCode]

export class TunError extends PilotError {
  declare readonly code: TunErrorCode

  constructor(code: TunErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options)
  }
}

export const PERMISSION_HINT =
  'run as root (sudo pilot-tun up), or grant CAP_NET_ADMIN: `setcap cap_net_admin+ep $(command -v node)` ' +
  'or AmbientCapabilities=CAP_NET_ADMIN in the systemd unit'

export function inUseHint(name: string): string {
  return `stop the other instance with \`pilot-tun down\`; if nothing owns ${name} any more it is stale: \`ip link del ${name}\``
}
