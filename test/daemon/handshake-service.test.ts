// Port 444 under attack: a peer that streams far more than a trust message,
// and a peer that opens many handshake streams at once. Three SessionDrivers
// joined by an in-process hub (no tunnel): node 1 attacks, node 3 is a
// bystander, node 2 runs the handshake service.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SessionEndpoint, type StreamConfig } from '../../src/session/index.js'
import { SeededRandom } from '../../src/random.js'
import { nullLogger } from '../../src/logger.js'
import { SessionDriver, type PacketSink } from '../../src/daemon/session-driver.js'
import { PilotStream } from '../../src/daemon/pilot-stream.js'
import { sendHandshakeMessage, startHandshakeService } from '../../src/daemon/services.js'
import { TRUST_PORT } from '../../src/daemon/trust-service.js'
import { sleep, waitFor } from './helpers.js'

/** Routes each packet to the driver of its destination node on the next turn. */
class Hub {
  readonly drivers = new Map<number, SessionDriver>()
  sink(): PacketSink {
    return {
      send: (node, packet) => {
        const copy = Buffer.from(packet)
        const to = this.drivers.get(node)
        if (to !== undefined) setImmediate(() => to.receive(copy))
      },
    }
  }
  add(node: number): SessionDriver {
    const d = new SessionDriver({ endpoint: new SessionEndpoint({ local: { network: 0, node }, random: new SeededRandom(node) }), sink: this.sink(), admit: () => true })
    this.drivers.set(node, d)
    return d
  }
  close(): void {
    for (const d of this.drivers.values()) d.close()
  }
}

function dial(from: SessionDriver, to: number): { stream: PilotStream; outcome: Promise<'connected' | string> } {
  const stream = new PilotStream(from, from.connect({ network: 0, node: to }, TRUST_PORT))
  const outcome = new Promise<'connected' | string>((resolve) => {
    stream.once('connect', () => resolve('connected'))
    stream.once('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message))
  })
  stream.on('error', () => {})
  return { stream, outcome }
}

test('port 444: a peer streaming 1 MiB is cut off (RST) after a few KiB, the message is never delivered', async () => {
  const hub = new Hub()
  const attacker = hub.add(1)
  const server = hub.add(2)
  let delivered = 0
  const service = startHandshakeService(server, { onMessage: () => delivered++, readTimeoutMs: 10_000, logger: nullLogger })
  const { stream, outcome } = dial(attacker, 2)
  assert.equal(await outcome, 'connected')
  const reset = new Promise<string>((resolve) => stream.once('error', (err: Error & { code?: string }) => resolve(err.code ?? '')))
  const junk = Buffer.alloc(1024 * 1024, 0x20) // whitespace: never a complete JSON object
  stream.write(junk)
  stream.end()
  const code = await Promise.race([reset, sleep(2_000).then(() => 'no reset within 2 s')])
  assert.equal(code, 'PT_SESSION_RESET')
  const sent = stream.connection.stats().bytesSent
  assert.ok(sent <= 64 * 1024, `the attacker got ${sent} bytes out before the cut (window + cap must bound it)`)
  assert.equal(delivered, 0)
  assert.equal(service.stats().oversize, 1)
  await sleep(20)
  assert.equal(service.stats().open, 0, 'the slot is free again')
  hub.close()
})

test('port 444: the 5th concurrent stream from one node is refused; another node and a freed slot still get in', async () => {
  const hub = new Hub()
  const attacker = hub.add(1)
  hub.add(2)
  const bystander = hub.add(3)
  const server = hub.drivers.get(2)!
  const service = startHandshakeService(server, { onMessage: () => {}, readTimeoutMs: 10_000, logger: nullLogger })
  const dials = [0, 1, 2, 3, 4].map(() => dial(attacker, 2))
  const outcomes = await Promise.all(dials.map((d) => d.outcome))
  assert.deepEqual(outcomes.slice(0, 4), ['connected', 'connected', 'connected', 'connected'])
  assert.equal(outcomes[4], 'PT_SESSION_REFUSED')
  assert.equal(service.stats().refusedPerNode, 1)
  assert.equal(server.stats().synGateRefused, 1)
  assert.equal(await dial(bystander, 2).outcome, 'connected', 'the cap is per node')
  // One of the four goes away: the attacker may open one again.
  dials[0]!.stream.destroy()
  await sleep(20)
  assert.equal(await dial(attacker, 2).outcome, 'connected')
  hub.close()
})

test('port 444: all nodes together are capped too (maxStreams)', async () => {
  const hub = new Hub()
  const one = hub.add(1)
  const server = hub.add(2)
  const three = hub.add(3)
  const service = startHandshakeService(server, { onMessage: () => {}, readTimeoutMs: 10_000, logger: nullLogger, limits: { maxStreams: 3 } })
  const outcomes = await Promise.all([dial(one, 2), dial(one, 2), dial(three, 2)].map((d) => d.outcome))
  assert.deepEqual(outcomes, ['connected', 'connected', 'connected'])
  assert.equal(await dial(three, 2).outcome, 'PT_SESSION_REFUSED')
  assert.equal(service.stats().refusedTotal, 1)
  hub.close()
})

test('port 444: a real trust message (one 4000-byte segment, as Go sends it) still fits and is delivered', async () => {
  const hub = new Hub()
  const client = hub.add(1)
  const server = hub.add(2)
  const got: Array<[number, number]> = []
  startHandshakeService(server, { onMessage: (node, bytes) => got.push([node, bytes.length]), readTimeoutMs: 10_000, logger: nullLogger })
  const message = Buffer.from(JSON.stringify({ type: 'handshake_request', justification: 'x'.repeat(3900) }))
  const streams = {
    openStream: (node: number, port: number, config?: Partial<StreamConfig>): Promise<PilotStream> => {
      const s = new PilotStream(client, client.connect({ network: 0, node }, port, config))
      return new Promise((resolve, reject) => {
        s.once('connect', () => resolve(s))
        s.once('error', reject)
      })
    },
  }
  await sendHandshakeMessage(streams, 2, message, { dialTimeoutMs: 2_000, closeDelayMs: 50 })
  await waitFor(() => got.length === 1, 'the message delivered')
  assert.deepEqual(got, [[1, message.length]])
  hub.close()
})
