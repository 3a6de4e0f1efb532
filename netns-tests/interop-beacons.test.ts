// Beacon clustering against the Go reference (docs/wire.md §9.7): a pilot-tun
// beacon peered with the reference `beacon` (-beacon-id, -peers, -registry),
// all on loopback. Two raw UDP "nodes", one announced at each beacon, relay to
// each other through both: each beacon forwards the Relay unchanged to the
// beacon whose Sync named the destination. Then the same pair of beacons
// finding each other through a pilot-tun registry instead of a static list.
// Skips, saying why, without the reference binaries (test/util/reference.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { accessSync, constants } from 'node:fs'
import dgram from 'node:dgram'
import { join } from 'node:path'
import { createConnection } from 'node:net'
import { RegistryFrameDecoder, encodeRegistryMessage } from '../src/protocol/registry-framing.js'
import { BeaconType, encodeBeaconMessage } from '../src/protocol/beacon-messages.js'
import { Bench, HOST, freeTcpPort, freeUdpPort, pilotTunBin, referenceLookup, tcpAccepts, waitFor, withBench } from './helpers/reference-bench.js'

function referenceBeaconMissing(): string | false {
  if (referenceLookup.reason !== null) return referenceLookup.reason
  const bin = referenceLookup.found.bin('beacon')
  try {
    accessSync(bin, constants.X_OK)
    return false
  } catch {
    return `the reference beacon is absent: no executable ${bin}`
  }
}
const skip = referenceBeaconMissing()

/** A raw node: one UDP socket that announces itself at a beacon and records what it receives. */
class RawNode {
  readonly inbox: Buffer[] = []
  private constructor(readonly socket: dgram.Socket, readonly id: number, readonly beaconPort: number) {
    socket.on('message', (m) => this.inbox.push(m))
  }
  static async open(id: number, beaconPort: number): Promise<RawNode> {
    const s = dgram.createSocket('udp4')
    await new Promise<void>((r) => s.bind(0, HOST, () => r()))
    return new RawNode(s, id, beaconPort)
  }
  send(b: Uint8Array): void {
    this.socket.send(b, this.beaconPort, HOST)
  }
  discover(): void {
    this.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: this.id }))
  }
  relay(dest: number, frame: Buffer): void {
    this.send(encodeBeaconMessage({ type: BeaconType.RELAY, senderId: this.id, destId: dest, frame }))
  }
  /** Announces itself until the beacon answers (it may still be starting). */
  async announce(): Promise<void> {
    await waitFor(`beacon :${this.beaconPort} to answer node ${this.id}`, async () => {
      this.discover()
      await new Promise((r) => setTimeout(r, 100))
      return this.inbox.some((m) => m[0] === BeaconType.DISCOVER_REPLY)
    })
  }
  close(): void {
    this.socket.close()
  }
}

/**
 * Relays a → b and b → a until each frame arrives as a RelayDeliver from the right sender.
 * The nodes keep announcing themselves (Discover), as daemons do. The first Syncs take
 * up to 10 s (the reference's interval), so this waits up to 30 s.
 */
async function relayBothWays(a: RawNode, b: RawNode): Promise<void> {
  const fa = Buffer.from(`PILT from ${a.id}`)
  const fb = Buffer.from(`PILT from ${b.id}`)
  const delivered = (n: RawNode, from: number, frame: Buffer): boolean =>
    n.inbox.some((m) => m[0] === BeaconType.RELAY_DELIVER && m.readUInt32BE(1) === from && m.subarray(5).equals(frame))
  await waitFor(`relay ${a.id} → ${b.id} and ${b.id} → ${a.id} across the beacons`, async () => {
    a.discover()
    b.discover()
    if (!delivered(b, a.id, fa)) a.relay(b.id, fa)
    if (!delivered(a, b.id, fb)) b.relay(a.id, fb)
    await new Promise((r) => setTimeout(r, 300))
    return delivered(b, a.id, fa) && delivered(a, b.id, fb)
  }, 30_000)
}

/** The registry's `beacon_list` (unsigned, one connection). */
function beaconList(port: number): Promise<Array<{ id: number; addr: string }>> {
  return new Promise((resolve, reject) => {
    const decoder = new RegistryFrameDecoder()
    const sock = createConnection({ host: HOST, port }, () => sock.write(encodeRegistryMessage({ type: 'beacon_list' })))
    sock.on('data', (d: Buffer) => {
      const m = decoder.pushAndDrain(d)[0]
      if (m === undefined) return
      sock.destroy()
      resolve((m.beacons ?? []) as Array<{ id: number; addr: string }>)
    })
    sock.once('error', reject)
  })
}

function startPilotTunBeacon(bench: Bench, port: number, args: string[]): void {
  bench.start('pilot-tun beacon', process.execPath, [pilotTunBin, 'beacon', '--listen', `${HOST}:${port}`, '--log-level', 'debug', ...args])
}

function startReferenceBeacon(bench: Bench, port: number, args: string[]): void {
  const full = ['-addr', `${HOST}:${port}`, '-log-level', 'debug', ...args]
  bench.transcript.push(`$ beacon ${full.join(' ')}`)
  bench.start('reference beacon', bench.ref.bin('beacon'), full)
}

test('a pilot-tun beacon and the reference beacon, peered by static lists, relay both ways between their nodes', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const [ours, theirs] = [await freeUdpPort(), await freeUdpPort()]
    startPilotTunBeacon(bench, ours, ['--beacon-id', '1', '--peers', `${HOST}:${theirs}`])
    startReferenceBeacon(bench, theirs, ['-beacon-id', '7', '-peers', `${HOST}:${ours}`])
    const a = await RawNode.open(11, ours)
    const b = await RawNode.open(22, theirs)
    try {
      await a.announce()
      await b.announce()
      await relayBothWays(a, b)
      // The reference logged our Sync (it accepted the format) and forwarded to us.
      await waitFor('the reference to log our Sync', async () => /gossip sync received[^\n]*peer_beacon_id=1/.test(bench.logs()))
      for (const line of bench.logs().split('\n').filter((l) => /gossip sync received|gossip sent|beacon cluster/i.test(l)).slice(0, 8)) t.diagnostic(line)
    } finally {
      a.close()
      b.close()
    }
  })
})

test('the reference beacon and a pilot-tun beacon find each other through a pilot-tun registry (beacon_register / beacon_list)', { skip, timeout: 90_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const [reg, ours, theirs] = [await freeTcpPort(), await freeUdpPort(), await freeUdpPort()]
    bench.start('pilot-tun registry', process.execPath, [pilotTunBin, 'registry', '--listen', `${HOST}:${reg}`, '--store', join(bench.dir, 'r.db')])
    await waitFor('the pilot-tun registry', () => tcpAccepts(reg))
    startPilotTunBeacon(bench, ours, ['--beacon-id', '1', '--registry', `${HOST}:${reg}`])
    startReferenceBeacon(bench, theirs, ['-beacon-id', '7', '-registry', `${HOST}:${reg}`])
    const a = await RawNode.open(11, ours)
    const b = await RawNode.open(22, theirs)
    try {
      await a.announce()
      await b.announce()
      // Both beacons register at start (the reference again every 30 s).
      const listed = await waitFor('both beacons in the registry\'s beacon_list', async () => {
        const ids = (await beaconList(reg)).map((x) => x.id).sort()
        return ids.includes(1) && ids.includes(7) ? await beaconList(reg) : null
      }, 15_000)
      t.diagnostic(`beacon_list: ${JSON.stringify(listed)}`)
      assert.ok(listed.some((x) => x.id === 7 && x.addr === `${HOST}:${theirs}`), 'the reference registered its -addr')
      assert.ok(listed.some((x) => x.id === 1 && x.addr === `${HOST}:${ours}`), 'ours registered its --listen')
      // Ours lists the reference at once; the reference lists us at its next round (≤ 30 s), then Syncs within 10 s.
      await waitFor(`relay across the beacons`, async () => {
        try {
          await relayBothWays(a, b)
          return true
        } catch {
          return false
        }
      }, 75_000)
      for (const line of bench.logs().split('\n').filter((l) => /gossip|registry|peer/i.test(l)).slice(0, 12)) t.diagnostic(line)
    } finally {
      a.close()
      b.close()
    }
  })
})
