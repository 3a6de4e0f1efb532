/**
 * `TunDevice`: the TUN interface as an edge interface, after wireguard-go's
 * tun.Device, with an in-memory twin beside it (testing/memory-tun.ts). The
 * daemon builds one and everything above it reads and writes IP packets
 * through this interface only.
 *
 * Reads arrive in batches (one call per kernel wake-up, up to `batch`
 * packets). A batch is one fresh buffer that the handler owns: it may keep
 * views into it, and may write into the `headroom` bytes before each packet
 * and the `tailroom` bytes after it (room for a tunnel header and an AEAD tag,
 * so sealing needs no copy).
 */
import { TunError, TunErrorCode, PERMISSION_HINT, inUseHint } from './tun-errors.js'
import { loadTunAddon, type NativeHandle, type TunAddon } from './native.js'

export interface PacketBatch {
  /** The whole batch; packet i is `buffer[offsets[i], offsets[i] + lengths[i])`. */
  readonly buffer: Buffer
  readonly count: number
  readonly offsets: Uint32Array
  readonly lengths: Uint32Array
  /** Free bytes before each packet (same for every packet of the device). */
  readonly headroom: number
  /** Free bytes after each packet. */
  readonly tailroom: number
}

/** A view of packet `i` (no copy). */
export function packetAt(batch: PacketBatch, i: number): Buffer {
  const o = batch.offsets[i]!
  return batch.buffer.subarray(o, o + batch.lengths[i]!)
}

export type PacketBatchHandler = (batch: PacketBatch) => void
export type TunErrorHandler = (err: TunError) => void

export interface TunDeviceStats {
  batchesRead: number
  packetsRead: number
  bytesRead: number
  packetsWritten: number
  bytesWritten: number
  /** Packets the kernel refused (malformed, link down) or that were written after close. */
  writeDrops: number
  /** Handler calls that threw. */
  handlerErrors: number
}

export function newTunDeviceStats(): TunDeviceStats {
  return { batchesRead: 0, packetsRead: 0, bytesRead: 0, packetsWritten: 0, bytesWritten: 0, writeDrops: 0, handlerErrors: 0 }
}

export interface TunDevice {
  /** The interface name the kernel gave (e.g. `pilot0`). */
  readonly name: string
  /** Largest packet read or written; InterfaceSetup sets the link to this. */
  readonly mtu: number
  readonly headroom: number
  readonly tailroom: number
  readonly stats: TunDeviceStats
  /**
   * Sets the receiver (one per device; a later call replaces it). Reading
   * starts with the first call: until then the kernel queues (txqueuelen) and
   * drops. A throwing handler is counted and reported to `onError`; it never
   * stops the reader.
   */
  onPackets(handler: PacketBatchHandler): void
  /** Reader failures (interface deleted under us) and handler throws. */
  onError(handler: TunErrorHandler): void
  /**
   * Writes each packet into the kernel (one IP packet each; the bytes are
   * copied before this returns, so the caller may reuse them). Returns how
   * many were accepted; the rest are counted in `stats.writeDrops`.
   */
  writePackets(packets: readonly Uint8Array[]): number
  /** Like writePackets, for packets laid out in one buffer (zero copy for headroom layouts). */
  writeBatch(buffer: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number
  /** Stops reading and releases the device. Idempotent; no handler runs after it returns. */
  close(): void
  readonly closed: boolean
}

export const DEFAULT_TUN_NAME = 'pilot0'
export const DEFAULT_TUN_MTU = 65520
export const DEFAULT_TUN_BATCH = 64
/** IPv6 minimum MTU; the overlay is IPv6-only. */
export const MIN_TUN_MTU = 1280
/** Largest non-jumbo IPv6 packet. */
export const MAX_TUN_MTU = 65535

export interface TunDeviceOptions {
  name?: string
  mtu?: number
  /** Packets per wake-up at most. */
  batch?: number
  headroom?: number
  tailroom?: number
  /** Batches queued between the reader thread and JS before the thread waits. */
  queue?: number
  /**
   * 'thread' (default): a reader thread per device hands batches to JS; 'loop': no thread, the
   * event loop polls the fd and reads on the JS thread (one thread hand-off less per packet).
   * The default comes from PILOT_TUN_READER when set.
   */
  readerMode?: 'thread' | 'loop'
}

export interface ResolvedTunOptions {
  name: string
  mtu: number
  batch: number
  headroom: number
  tailroom: number
  queue: number
  readerMode: 'thread' | 'loop'
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/

/** Checks and fills defaults; shared by the native device and the twin so both refuse the same input. */
export function resolveTunOptions(opts: TunDeviceOptions = {}): ResolvedTunOptions {
  const name = opts.name ?? DEFAULT_TUN_NAME
  if (!NAME_RE.test(name) || name === '.' || name === '..') {
    throw new TunError(TunErrorCode.INVALID_OPTIONS, `bad interface name ${JSON.stringify(name)}`, {
      hint: 'use 1 to 15 letters, digits, "_", "-" or "."',
    })
  }
  const mtu = opts.mtu ?? DEFAULT_TUN_MTU
  if (!Number.isInteger(mtu) || mtu < MIN_TUN_MTU || mtu > MAX_TUN_MTU) {
    throw new TunError(TunErrorCode.INVALID_OPTIONS, `bad MTU ${mtu}`, {
      hint: `use ${MIN_TUN_MTU}..${MAX_TUN_MTU} (IPv6 needs at least ${MIN_TUN_MTU})`,
    })
  }
  const batch = opts.batch ?? DEFAULT_TUN_BATCH
  const headroom = opts.headroom ?? 0
  const tailroom = opts.tailroom ?? 0
  const queue = opts.queue ?? 16
  const bad = (v: number, lo: number, hi: number) => !Number.isInteger(v) || v < lo || v > hi
  if (bad(batch, 1, 1024) || bad(headroom, 0, 4096) || bad(tailroom, 0, 4096) || bad(queue, 1, 4096)) {
    throw new TunError(TunErrorCode.INVALID_OPTIONS, 'bad batch, headroom, tailroom or queue', {
      hint: 'batch 1..1024, headroom and tailroom 0..4096, queue 1..4096',
    })
  }
  const readerMode = opts.readerMode ?? (process.env.PILOT_TUN_READER === 'loop' ? 'loop' : 'thread')
  if (readerMode !== 'thread' && readerMode !== 'loop') {
    throw new TunError(TunErrorCode.INVALID_OPTIONS, `bad reader mode ${JSON.stringify(readerMode)}`, { hint: "use 'thread' or 'loop'" })
  }
  return { name, mtu, batch, headroom, tailroom, queue, readerMode }
}

/** Maps the addon's errno errors to typed errors with hints. */
export function tunOpenError(err: unknown, name: string): TunError {
  const e = err as { code?: string; message?: string }
  switch (e.code) {
    case 'EPERM':
    case 'EACCES':
      return new TunError(TunErrorCode.PERMISSION, `cannot create TUN interface ${name}: needs root or CAP_NET_ADMIN`, {
        hint: PERMISSION_HINT,
        cause: err,
      })
    case 'EBUSY':
      return new TunError(TunErrorCode.IN_USE, `TUN interface ${name} is already in use by another process`, {
        hint: inUseHint(name),
        cause: err,
      })
    case 'EINVAL':
      return new TunError(TunErrorCode.IN_USE, `an interface named ${name} exists and is not a TUN this process can attach to`, {
        hint: `pick another name, or remove it if it is stale: \`ip link del ${name}\``,
        cause: err,
      })
    case 'ENOENT':
    case 'ENODEV':
      return new TunError(TunErrorCode.UNAVAILABLE, '/dev/net/tun is missing', {
        hint: 'load the tun module (`modprobe tun`); in a container, pass the device (--device /dev/net/tun)',
        cause: err,
      })
    default:
      return new TunError(TunErrorCode.UNAVAILABLE, `cannot open TUN interface ${name}: ${e.message ?? String(err)}`, {
        cause: err,
      })
  }
}

const ERRNO_NAMES: Record<number, string> = { 5: 'EIO', 9: 'EBADF', 77: 'EBADFD', 14: 'EFAULT', 12: 'ENOMEM' }

/** The TUN device over the C addon (native/tun.c). Linux only; needs CAP_NET_ADMIN. */
export class NativeTunDevice implements TunDevice {
  readonly stats = newTunDeviceStats()
  private handler: PacketBatchHandler | null = null
  private errorHandler: TunErrorHandler | null = null
  private reading = false
  private isClosed = false
  // Scratch for writePackets; grown on demand, reused across calls.
  private offsets = new Uint32Array(DEFAULT_TUN_BATCH)
  private lengths = new Uint32Array(DEFAULT_TUN_BATCH)
  private readonly onNativeBatch: (block: ArrayBuffer | null, count: number, errno: number) => void

  private constructor(
    private readonly addon: TunAddon,
    private readonly handle: NativeHandle,
    readonly name: string,
    readonly fd: number,
    private readonly opts: ResolvedTunOptions,
  ) {
    // Bound once (undici habit): the addon calls this per batch.
    this.onNativeBatch = this.deliver.bind(this)
  }

  get mtu(): number {
    return this.opts.mtu
  }
  get headroom(): number {
    return this.opts.headroom
  }
  get tailroom(): number {
    return this.opts.tailroom
  }
  get closed(): boolean {
    return this.isClosed
  }

  /**
   * Opens (creates) the TUN interface. The link comes up without addresses;
   * InterfaceSetup configures it. Closing the device (or the process dying)
   * removes the interface with its addresses and routes: it is not persistent.
   */
  static open(options: TunDeviceOptions = {}, addon: TunAddon = loadTunAddon()): NativeTunDevice {
    const opts = resolveTunOptions(options)
    let r: { handle: NativeHandle; fd: number; name: string }
    try {
      r = addon.open(opts.name)
    } catch (err) {
      throw tunOpenError(err, opts.name)
    }
    return new NativeTunDevice(addon, r.handle, r.name, r.fd, opts)
  }

  onPackets(handler: PacketBatchHandler): void {
    this.handler = handler
    if (this.reading || this.isClosed) return
    this.addon.startReader(this.handle, this.onNativeBatch, {
      batch: this.opts.batch,
      bufferSize: this.opts.mtu,
      headroom: this.opts.headroom,
      tailroom: this.opts.tailroom,
      queue: this.opts.queue,
      mode: this.opts.readerMode,
    })
    this.reading = true
  }

  onError(handler: TunErrorHandler): void {
    this.errorHandler = handler
  }

  private deliver(block: ArrayBuffer | null, count: number, errno: number): void {
    if (this.isClosed) return
    if (block === null) {
      const code = ERRNO_NAMES[errno] ?? `errno ${errno}`
      this.report(
        new TunError(TunErrorCode.READER_FAILED, `reading from ${this.name} failed (${code}); the interface was probably deleted`, {
          hint: 'restart pilot-tun; check that nothing else deletes the interface',
        }),
      )
      return
    }
    const offsets = new Uint32Array(block, 0, count)
    const lengths = new Uint32Array(block, count * 4, count)
    let bytes = 0
    for (let i = 0; i < count; i++) bytes += lengths[i]!
    this.stats.batchesRead++
    this.stats.packetsRead += count
    this.stats.bytesRead += bytes
    const batch: PacketBatch = {
      buffer: Buffer.from(block),
      count,
      offsets,
      lengths,
      headroom: this.opts.headroom,
      tailroom: this.opts.tailroom,
    }
    try {
      this.handler?.(batch)
    } catch (err) {
      this.stats.handlerErrors++
      this.report(
        new TunError(TunErrorCode.HANDLER_FAILED, `packet handler threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }),
      )
    }
  }

  private report(err: TunError): void {
    if (this.errorHandler !== null) {
      this.errorHandler(err)
      return
    }
    // Nobody listens: a dead data path must not go unnoticed, so fail loudly
    // (the kernel removes the interface when the process exits).
    if (err.code === TunErrorCode.READER_FAILED) {
      queueMicrotask(() => {
        throw err
      })
    }
  }

  writePackets(packets: readonly Uint8Array[]): number {
    const n = packets.length
    if (n === 0) return 0
    if (this.isClosed) {
      this.stats.writeDrops += n
      return 0
    }
    if (this.offsets.length < n) {
      this.offsets = new Uint32Array(n)
      this.lengths = new Uint32Array(n)
    }
    const offsets = this.offsets
    const lengths = this.lengths
    let written = 0
    let bytes = 0
    let i = 0
    // One native call per run of packets sharing an ArrayBuffer (Buffer's
    // pool and batch views make such runs common); offsets are then absolute.
    while (i < n) {
      const first = packets[i]!
      const ab = first.buffer
      if (!(ab instanceof ArrayBuffer)) {
        offsets[0] = 0
        lengths[0] = first.byteLength
        const w = this.addon.writeBatch(this.handle, first, offsets, lengths, 1)
        written += w
        if (w === 1) bytes += first.byteLength
        i++
        continue
      }
      let k = 0
      let runBytes = 0
      while (i < n && packets[i]!.buffer === ab) {
        const p = packets[i]!
        offsets[k] = p.byteOffset
        lengths[k] = p.byteLength
        runBytes += p.byteLength
        k++
        i++
      }
      const w = this.addon.writeBatch(this.handle, ab, offsets, lengths, k)
      written += w
      // Exact only when all succeed; drops are rare (malformed packets), so the byte count is approximate then.
      bytes += w === k ? runBytes : 0
    }
    this.stats.packetsWritten += written
    this.stats.bytesWritten += bytes
    this.stats.writeDrops += n - written
    return written
  }

  writeBatch(buffer: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (count === 0) return 0
    if (this.isClosed) {
      this.stats.writeDrops += count
      return 0
    }
    const w = this.addon.writeBatch(this.handle, buffer, offsets, lengths, count)
    let bytes = 0
    for (let i = 0; i < count; i++) bytes += lengths[i]!
    this.stats.packetsWritten += w
    this.stats.bytesWritten += w === count ? bytes : 0
    this.stats.writeDrops += count - w
    return w
  }

  close(): void {
    if (this.isClosed) return
    this.isClosed = true
    // Synchronous: stops and joins the reader thread, then closes the fd,
    // which makes the kernel delete the (non-persistent) interface.
    this.addon.close(this.handle)
    this.handler = null
  }
}
