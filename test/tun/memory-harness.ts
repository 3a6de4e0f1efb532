// The kernel's side of a MemoryTun, enough for the conformance suite: it
// builds the IPv6/UDP packets an application would send and delivers the
// daemon's written packets to "sockets" on the node's address, checking the
// UDP checksum as the kernel would.
import { MemoryTun } from '../../src/tun/testing/memory-tun.js'
import type { TunDeviceOptions } from '../../src/tun/device.js'
import type { KernelListener, TunHarness } from './conformance.js'
import { buildUdp6, parseUdp6 } from './udp6.js'

export const NODE_ADDRESS = 'fd50:494c:4f54::2a'
export const PEER_ADDRESS = 'fd50:494c:4f54::99'

export async function memoryHarness(options: TunDeviceOptions): Promise<TunHarness> {
  const tun = new MemoryTun(options)
  const sockets = new Map<number, { queue: { payload: Buffer; fromPort: number }[]; wake: (() => void) | null }>()
  let nextPort = 40000
  tun.onWrite((packet) => {
    const u = parseUdp6(packet)
    if (u === null || !u.checksumOk || u.dst !== NODE_ADDRESS) return
    const s = sockets.get(u.dstPort)
    if (s === undefined) return
    s.queue.push({ payload: u.payload, fromPort: u.srcPort })
    s.wake?.()
  })
  return {
    device: tun,
    nodeAddress: NODE_ADDRESS,
    peerAddress: PEER_ADDRESS,
    async sendFromKernel(payload, dstPort) {
      const srcPort = nextPort++
      tun.inject(buildUdp6(NODE_ADDRESS, PEER_ADDRESS, srcPort, dstPort, payload))
      return srcPort
    },
    async listen(): Promise<KernelListener> {
      const port = nextPort++
      const s: { queue: { payload: Buffer; fromPort: number }[]; wake: (() => void) | null } = { queue: [], wake: null }
      sockets.set(port, s)
      return {
        port,
        async next(timeoutMs = 2000) {
          const deadline = Date.now() + timeoutMs
          while (s.queue.length === 0) {
            if (Date.now() > deadline) throw new Error(`nothing for port ${port}`)
            await new Promise<void>((r) => {
              s.wake = r
              setTimeout(r, 20)
            })
          }
          return s.queue.shift()!
        },
        async close() {
          sockets.delete(port)
        },
      }
    },
    async close() {
      tun.close()
    },
  }
}
