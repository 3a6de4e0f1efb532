/**
 * `MemoryTun`: the in-memory twin of NativeTunDevice (wireguard-go's
 * tun/tuntest). A test plays the kernel: `inject()` is a packet the kernel
 * routes into the TUN (the daemon reads it), and `written` / `onWrite()` show
 * what the daemon wrote into the kernel.
 *
 * It keeps the native device's observable behaviour so one conformance suite
 * covers both (test/tun/device.test.ts): batches arrive on a later
 * macrotask, at most `batch` packets each, laid out with headroom and
 * tailroom in one fresh buffer; up to `queueLimit` packets wait for a reader
 * (the kernel's txqueuelen) and the rest are dropped; the kernel refuses a
 * written packet that is empty or not IPv4/IPv6; nothing happens after close.
 */
import {
  newTunDeviceStats,
  resolveTunOptions,
  type PacketBatch,
  type PacketBatchHandler,
  type ResolvedTunOptions,
  type TunDevice,
  type TunDeviceOptions,
  type TunErrorHandler,
} from '../device.js'
import { TunError, TunErrorCode } from '../tun-errors.js'

/** Linux's default txqueuelen for a TUN (TUN_READQ_SIZE). */
export const MEMORY_TUN_QUEUE_LIMIT = 500

export class MemoryTun implements TunDevice {
  readonly stats = newTunDeviceStats()
  /** Copies of every packet the kernel accepted from the daemon, in order. */
  readonly written: Buffer[] = []
  /** Packets injected while the queue toward the reader was full. */
  injectDrops = 0
  private readonly opts: ResolvedTunOptions
  private readonly pending: Buffer[] = []
  private handler: PacketBatchHandler | null = null
  private errorHandler: TunErrorHandler | null = null
  private writeHandler: ((packet: Buffer) => void) | null = null
  private scheduled: NodeJS.Immediate | null = null
  private isClosed = false
  private readonly flushBound: () => void

  constructor(options: TunDeviceOptions = {}, readonly queueLimit = MEMORY_TUN_QUEUE_LIMIT) {
    this.opts = resolveTunOptions(options)
    this.flushBound = this.flush.bind(this)
  }

  get name(): string {
    return this.opts.name
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

  // ---- the kernel's side ----

  /** The kernel sends `packet` into the TUN. Returns false if it was dropped (closed, queue full, over MTU). */
  inject(packet: Uint8Array): boolean {
    if (this.isClosed || packet.length > this.opts.mtu) return false
    if (this.pending.length >= this.queueLimit) {
      this.injectDrops++
      return false
    }
    this.pending.push(Buffer.from(packet))
    this.schedule()
    return true
  }

  /** Observes each packet the daemon writes (after `written` records it). */
  onWrite(handler: (packet: Buffer) => void): void {
    this.writeHandler = handler
  }

  /** Simulates the reader failing (the interface deleted under the daemon). */
  fail(): void {
    this.errorHandler?.(new TunError(TunErrorCode.READER_FAILED, `reading from ${this.name} failed (EBADFD)`))
  }

  // ---- TunDevice ----

  onPackets(handler: PacketBatchHandler): void {
    this.handler = handler
    if (this.pending.length > 0) this.schedule()
  }

  onError(handler: TunErrorHandler): void {
    this.errorHandler = handler
  }

  writePackets(packets: readonly Uint8Array[]): number {
    let written = 0
    for (const p of packets) if (this.writeOne(p)) written++
    return written
  }

  writeBatch(buffer: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    let written = 0
    for (let i = 0; i < count; i++) {
      const o = offsets[i]!
      const l = lengths[i]!
      if (o + l > buffer.length) throw new RangeError('writeBatch: a packet lies outside the buffer')
      if (this.writeOne(buffer.subarray(o, o + l))) written++
    }
    return written
  }

  close(): void {
    if (this.isClosed) return
    this.isClosed = true
    if (this.scheduled !== null) clearImmediate(this.scheduled)
    this.scheduled = null
    this.pending.length = 0
    this.handler = null
  }

  private writeOne(p: Uint8Array): boolean {
    const version = p.length > 0 ? p[0]! >> 4 : 0
    // The kernel takes the protocol from the version nibble (IFF_NO_PI) and refuses anything else.
    if (this.isClosed || (version !== 4 && version !== 6)) {
      this.stats.writeDrops++
      return false
    }
    const copy = Buffer.from(p)
    this.written.push(copy)
    this.stats.packetsWritten++
    this.stats.bytesWritten += copy.length
    this.writeHandler?.(copy)
    return true
  }

  private schedule(): void {
    if (this.scheduled === null && this.handler !== null) this.scheduled = setImmediate(this.flushBound)
  }

  private flush(): void {
    this.scheduled = null
    if (this.isClosed || this.handler === null) return
    const count = Math.min(this.pending.length, this.opts.batch)
    if (count === 0) return
    const batch = this.pack(this.pending.splice(0, count))
    this.stats.batchesRead++
    this.stats.packetsRead += count
    for (let i = 0; i < count; i++) this.stats.bytesRead += batch.lengths[i]!
    try {
      this.handler(batch)
    } catch (err) {
      this.stats.handlerErrors++
      this.errorHandler?.(
        new TunError(TunErrorCode.HANDLER_FAILED, `packet handler threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }),
      )
    }
    if (this.pending.length > 0) this.schedule()
  }

  /** Same layout as the addon: each slot is headroom + packet + tailroom, rounded up to 8. */
  private pack(packets: Buffer[]): PacketBatch {
    const { headroom, tailroom } = this.opts
    let size = 0
    for (const p of packets) size += (headroom + p.length + tailroom + 7) & ~7
    const buffer = Buffer.alloc(size)
    const offsets = new Uint32Array(packets.length)
    const lengths = new Uint32Array(packets.length)
    let used = 0
    packets.forEach((p, i) => {
      offsets[i] = used + headroom
      lengths[i] = p.length
      p.copy(buffer, used + headroom)
      used += (headroom + p.length + tailroom + 7) & ~7
    })
    return { buffer, count: packets.length, offsets, lengths, headroom, tailroom }
  }
}
