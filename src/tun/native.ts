/**
 * Loads the C addon (native/tun.c, built by node-gyp into build/Release) and
 * describes its functions. Only device.ts uses it; everything else talks to a
 * `TunDevice`.
 */
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { TunError, TunErrorCode } from './tun-errors.js'

/** Opaque: the addon's per-device state. Freed by GC after close(). */
export type NativeHandle = { readonly __brand: 'pilot-tun-native-handle' }

/**
 * Called once per batch on the JS thread. `block` layout: u32 offsets[count],
 * u32 lengths[count], then the packets; offsets count from the start of
 * `block`. `block === null` means the reader stopped with `errno`.
 */
export type NativeBatchCallback = (block: ArrayBuffer | null, count: number, errno: number) => void

export interface NativeReaderOptions {
  /** Packets per wake-up at most (1..1024). */
  batch: number
  /** Largest packet read (>= MTU; a longer packet is truncated by the kernel). */
  bufferSize: number
  /** Free bytes before each packet. */
  headroom: number
  /** Free bytes after each packet. */
  tailroom: number
  /** Batches queued toward JS before the reader thread waits. */
  queue: number
  /** 'thread' (a reader thread) or 'loop' (the event loop polls the fd; no thread). */
  mode?: 'thread' | 'loop'
}

export interface TunAddon {
  open(name: string): { handle: NativeHandle; fd: number; name: string }
  startReader(handle: NativeHandle, callback: NativeBatchCallback, options: NativeReaderOptions): void
  writeBatch(
    handle: NativeHandle,
    buffer: ArrayBufferLike | ArrayBufferView,
    offsets: Uint32Array,
    lengths: Uint32Array,
    count: number,
  ): number
  close(handle: NativeHandle): void
}

export const ADDON_FILE = 'pilot_tun_native.node'

/** Where the addon may be: from dist/src/tun (the built package) or src/tun (a TS loader). */
function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url))
  return [
    join(here, '..', '..', '..', 'build', 'Release', ADDON_FILE),
    join(here, '..', '..', 'build', 'Release', ADDON_FILE),
  ]
}

/**
 * Loads the addon. Not cached at module level (no singletons): node's require
 * cache already makes a second load free.
 */
export function loadTunAddon(): TunAddon {
  const paths = candidates()
  const found = paths.find((p) => existsSync(p))
  if (found === undefined) {
    throw new TunError(TunErrorCode.ADDON_MISSING, `the TUN addon is not built (looked for ${paths[0]})`, {
      hint:
        process.platform === 'linux'
          ? 'run `npm ci` or `npm rebuild` in the pilot-tun package (needs python3, make and a C compiler); `npm run build:native` rebuilds it alone'
          : 'the TUN front door works on Linux only',
    })
  }
  const require = createRequire(import.meta.url)
  try {
    return require(found) as TunAddon
  } catch (err) {
    throw new TunError(TunErrorCode.ADDON_MISSING, `the TUN addon at ${found} does not load: ${(err as Error).message}`, {
      hint: 'rebuild it for this Node.js with `npm rebuild` (or `npm run build:native`)',
      cause: err,
    })
  }
}
