/**
 * `SendBatch`: datagrams of one event-loop turn leave in one sendmmsg(2) call
 * (issue 12, lever 1) instead of one libuv send request each. Frames are copied
 * into one arena as they are sent (a few hundred nanoseconds for a full frame,
 * far less than a send request), or sealed there in place (`reserve`); the
 * batch is flushed in a microtask, i.e. when the current I/O callback ends, or
 * at once when the arena or the table is full. The callbacks that produce
 * frames already come in batches (one per recvmmsg round, one per TUN read
 * batch), so a microtask flush still carries a whole burst, and a lone packet
 * waits for no later phase of the loop.
 *
 * With UDP GSO (on unless `gso: false`), a run of full-sized frames to one
 * peer leaves as one message that the kernel cuts into the same datagrams as
 * late as it can: the wire is unchanged, the stack is crossed once per run.
 * A kernel or route that refuses GSO turns it off for this socket.
 *
 * When the kernel's send queue is full (EAGAIN/ENOBUFS) the rest of the batch
 * goes through the fallback (node's dgram, which queues and waits for
 * writability), so no datagram we accepted is dropped here.
 */
import type { DatapathAddon } from '../native-datapath.js'

/** The address cache is cleared past this many endpoints (a peer set is far smaller). */
const MAX_CACHED_ADDRESSES = 4096
const SOCKADDR_SLOT = 28 // sizeof(struct sockaddr_in6) ≥ sizeof(struct sockaddr_in)

export interface SendBatchOptions {
  addon: DatapathAddon
  fd: number
  /** Bytes of frames held before a flush is forced. */
  arenaBytes?: number
  /** Datagrams held before a flush is forced. */
  maxDatagrams?: number
  /** Where datagrams go when the batch cannot take them (not an IP literal, EAGAIN). */
  fallback: (frame: Uint8Array, host: string, port: number) => void
  /** Datagrams the kernel refused for their own reason (no route, ...). */
  onRefused: (count: number) => void
  /** UDP GSO for runs of equal-sized datagrams (default true). */
  gso?: boolean
  /** Schedules the end-of-callback flush; queueMicrotask by default (tests may step it). */
  schedule?: (flush: () => void) => void
}

export interface SendBatchStats {
  /** sendmmsg flushes that carried at least one datagram. */
  flushes: number
  /** Datagrams that left through sendmmsg. */
  batched: number
  /** Datagrams handed to the fallback (EAGAIN, or not an IP literal). */
  fallback: number
  /** Whether runs still go out as GSO messages. */
  gso: boolean
}

export class SendBatch {
  readonly stats: SendBatchStats
  private readonly addon: DatapathAddon
  private readonly fd: number
  private readonly arena: Buffer
  private readonly offsets: Uint32Array
  private readonly lengths: Uint32Array
  private readonly addrOffsets: Uint32Array
  private readonly addrs: Buffer
  private readonly hosts: string[] = []
  private readonly ports: number[] = []
  private readonly result = new Uint32Array(2)
  private readonly addressCache = new Map<string, Buffer | null>()
  private readonly schedule: (flush: () => void) => void
  private readonly flushBound = (): void => this.flush()
  private count = 0
  private used = 0
  private scheduled = false
  private lastHost = ''
  private lastPort = -1
  private lastAddr: Buffer | null = null

  constructor(private readonly opts: SendBatchOptions) {
    this.stats = { flushes: 0, batched: 0, fallback: 0, gso: opts.gso ?? true }
    this.addon = opts.addon
    this.fd = opts.fd
    const max = opts.maxDatagrams ?? 256
    this.arena = Buffer.allocUnsafe(opts.arenaBytes ?? 512 * 1024)
    this.offsets = new Uint32Array(max)
    this.lengths = new Uint32Array(max)
    this.addrOffsets = new Uint32Array(max)
    this.addrs = Buffer.alloc(max * SOCKADDR_SLOT)
    this.schedule = opts.schedule ?? queueMicrotask
  }

  /** Datagrams waiting for the flush. */
  get pending(): number {
    return this.count
  }

  /** Queues one datagram (the concatenation of `parts`); false = not taken, send it another way. */
  add(parts: Uint8Array | readonly Uint8Array[], length: number, host: string, port: number): boolean {
    const at = this.reserveAt(length, host, port)
    if (at < 0) return false
    if (Array.isArray(parts)) {
      let o = at
      for (const p of parts as readonly Uint8Array[]) {
        this.arena.set(p, o)
        o += p.length
      }
    } else {
      this.arena.set(parts as Uint8Array, at)
    }
    return true
  }

  /**
   * Room for one datagram of `length` bytes to host:port, to be written by the caller now (before
   * it yields): the frame is built in place, nothing is allocated or copied. Null = not taken.
   */
  reserve(length: number, host: string, port: number): Buffer | null {
    const at = this.reserveAt(length, host, port)
    return at < 0 ? null : this.arena.subarray(at, at + length)
  }

  private reserveAt(length: number, host: string, port: number): number {
    const addr = this.address(host, port)
    if (addr === null || length > this.arena.length) return -1
    if (this.count === this.offsets.length || this.used + length > this.arena.length) this.flush()
    const i = this.count++
    const at = this.used
    this.offsets[i] = at
    this.lengths[i] = length
    this.addrOffsets[i] = i * SOCKADDR_SLOT
    addr.copy(this.addrs, i * SOCKADDR_SLOT)
    this.hosts[i] = host
    this.ports[i] = port
    this.used = at + length
    if (!this.scheduled) {
      this.scheduled = true
      this.schedule(this.flushBound)
    }
    return at
  }

  /** Sends everything queued now. */
  flush(): void {
    this.scheduled = false
    const count = this.count
    if (count === 0) return
    let done = 0
    while (done < count) {
      const r = this.addon.sendBatch(
        this.fd,
        this.arena,
        this.offsets.subarray(done),
        this.lengths.subarray(done),
        this.addrs,
        this.addrOffsets.subarray(done),
        count - done,
        this.result,
        this.stats.gso ? 1 : 0,
      )
      if (this.result[1] === 1) this.stats.gso = false
      if (r <= 0) break // EAGAIN/ENOBUFS on the first one (or a closed fd): the rest goes the slow way
      const refused = this.result[0]!
      if (refused > 0) this.opts.onRefused(refused)
      this.stats.batched += r - refused
      done += r
    }
    this.stats.flushes++
    for (let i = done; i < count; i++) {
      // The fallback keeps its argument until a later tick: give it its own copy.
      const off = this.offsets[i]!
      this.opts.fallback(Buffer.from(this.arena.subarray(off, off + this.lengths[i]!)), this.hosts[i]!, this.ports[i]!)
      this.stats.fallback++
    }
    this.count = 0
    this.used = 0
    this.hosts.length = 0
    this.ports.length = 0
  }

  private address(host: string, port: number): Buffer | null {
    if (host === this.lastHost && port === this.lastPort) return this.lastAddr
    const key = `${host}|${port}`
    let addr = this.addressCache.get(key)
    if (addr === undefined) {
      if (this.addressCache.size >= MAX_CACHED_ADDRESSES) this.addressCache.clear()
      addr = this.addon.sockaddr(host, port) ?? null
      this.addressCache.set(key, addr)
    }
    this.lastHost = host
    this.lastPort = port
    this.lastAddr = addr
    return addr
  }
}
