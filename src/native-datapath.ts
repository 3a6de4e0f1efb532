/**
 * Loads the optional data-path addon (native/datapath.c, built by node-gyp into
 * build/Release): AES-256-GCM with one key schedule per key, and UDP sends in
 * batches with sendmmsg(2). Both have a pure-Node fallback, so a machine without
 * the addon (not Linux, no compiler) runs the same protocol, slower.
 *
 * `PILOT_NATIVE_DATAPATH=0` in the environment turns the addon off (to compare
 * the two paths, or to rule it out when something looks wrong).
 */
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

/** Opaque: two initialised EVP contexts (seal and open) for one key. Freed by GC. */
export type NativeAeadHandle = { readonly __brand: 'pilot-datapath-aead' }

export interface DatapathAddon {
  aeadNew(key: Uint8Array): NativeAeadHandle
  /** Ciphertext ‖ tag at out[outOffset]; returns plaintext.length + 16. Throws on misuse only. */
  aeadSeal(h: NativeAeadHandle, nonce: Uint8Array, aad: Uint8Array | null, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number
  /** Plaintext at out[outOffset] (written only when the tag checks), or -1. */
  aeadOpen(h: NativeAeadHandle, nonce: Uint8Array, aad: Uint8Array | null, sealed: Uint8Array, out: Uint8Array, outOffset: number): number
  /** A sockaddr_in/sockaddr_in6 for an IP literal, undefined for anything else. */
  sockaddr(host: string, port: number): Buffer | undefined
  /**
   * Datagram i = arena[offsets[i], +lengths[i]) to the sockaddr at addrs[addrOffsets[i]].
   * Returns how many were consumed (sent, or refused by the kernel for their own reason and
   * counted in result[0]); stops early on EAGAIN/ENOBUFS; -errno if the first one hit that.
   * flags & 1: runs of equal-sized datagrams back to back in the arena to one address go as
   * one UDP GSO message; result[1] = 1 when the kernel refused GSO for good.
   */
  sendBatch(
    fd: number,
    arena: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    addrs: Uint8Array,
    addrOffsets: Uint32Array,
    count: number,
    result?: Uint32Array,
    flags?: number,
  ): number
  /**
   * Reads a UDP socket (a dup of `fd`) from the event loop with recvmmsg and, when `gro`, UDP
   * GRO. One call per round: `block` starts with u32 (offset, length, host index, port) per
   * datagram, offsets from the start of block; `hosts` are the senders' addresses.
   */
  udpRecvStart(
    fd: number,
    callback: (block: ArrayBuffer, count: number, hosts: string[]) => void,
    options?: { batch?: number; rounds?: number; gro?: boolean },
  ): { handle: NativeReceiverHandle; gro: boolean }
  /** Stops; `onClosed` runs once the dup is closed (a later loop turn). The handle is dead afterwards. */
  udpRecvStop(handle: NativeReceiverHandle, onClosed?: () => void): void
}

/** Opaque: a native receiver; valid until udpRecvStop. */
export type NativeReceiverHandle = { readonly __brand: 'pilot-datapath-receiver' }

export const DATAPATH_ADDON_FILE = 'pilot_datapath.node'

/** Where the addon may be: from dist/src (the built package) or src (a TS loader). */
function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url))
  return [join(here, '..', '..', 'build', 'Release', DATAPATH_ADDON_FILE), join(here, '..', 'build', 'Release', DATAPATH_ADDON_FILE)]
}

/**
 * The result of the one load attempt. A loaded shared library is process-wide by nature (as
 * node's require cache is); remembering it spares a file lookup per cipher (two per key
 * exchange). It holds no state of ours.
 */
let loaded: DatapathAddon | null | undefined

/** The addon, or null when it is absent, does not load, or is turned off by `env`. */
export function loadDatapathAddon(env: NodeJS.ProcessEnv = process.env): DatapathAddon | null {
  if (env.PILOT_NATIVE_DATAPATH === '0') return null
  if (loaded !== undefined) return loaded
  const found = candidates().find((p) => existsSync(p))
  loaded = null
  if (found !== undefined) {
    try {
      loaded = createRequire(import.meta.url)(found) as DatapathAddon
    } catch {
      loaded = null
    }
  }
  return loaded
}
