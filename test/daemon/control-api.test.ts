// ControlApi over small fakes: what each control method reports and calls,
// the ping round trip and its timeout, refusal once closing, shutdown.
import { loadDatapathAddon } from '../../src/native-datapath.js'
import { UdpBind } from '../../src/tunnel/bind.js'
import { DEFAULT_OVERLAY_PREFIX, parseOverlayPrefix } from '../../src/protocol/ipv6-mapping.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Duplex } from 'node:stream'
import { ControlApi, type ControlApiOptions } from '../../src/daemon/control-api.js'
import { DaemonError, DaemonErrorCode, daemonClosedError } from '../../src/daemon/errors.js'
import type { PilotStream } from '../../src/daemon/pilot-stream.js'
import { ECHO_PORT } from '../../src/daemon/services.js'
import { pilotToIpv6Text } from '../../src/protocol/ipv6-mapping.js'
import type { PeerInfo } from '../../src/tunnel/index.js'

function peer(nodeId: number, extra: Partial<PeerInfo> = {}): PeerInfo {
  return {
    nodeId,
    path: 'direct',
    endpoint: { host: '2001:db8::9', port: 4000 },
    kdf: 'hkdf',
    kdfConfirmed: true,
    authenticated: true,
    lastReceiveMs: 0,
    bytesIn: 10,
    bytesOut: 20,
    packetsIn: 1,
    packetsOut: 2,
    queued: 0,
    dropped: { replay: 0, authFailed: 0, badPacket: 0, sourceMismatch: 0, queueOverflow: 0 },
    ...extra,
  }
}

/** A stream that writes back what it reads (the peer's echo service). */
function echoStream(): PilotStream {
  const d = new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      this.push(chunk)
      cb()
    },
    final(cb) {
      this.push(null)
      cb()
    },
  })
  return d as unknown as PilotStream
}

function fakes(overrides: Partial<ControlApiOptions> = {}) {
  const calls: string[] = []
  const state = { closing: false, rtts: [] as Array<[number, number]>, closeRequests: 0 }
  const options: ControlApiOptions = {
    version: '1.2.3',
    address: { network: 0, node: 42 },
    prefix: DEFAULT_OVERLAY_PREFIX,
    registryText: 'registry.example:9000',
    registryFrontEnd: () => 'registry.example:9000',
    beaconText: null,
    isPublic: true,
    kdf: 'auto',
    startedAt: performance.now() - 65_000,
    bind: { local: { host: '0.0.0.0', port: 4000 } },
    tunnel: {
      publicEndpoint: { host: '2001:db8::42', port: 4000 },
      peers: () => [peer(7, { rttMs: 1.23456, lastReceiveMs: performance.now() - 3_500 }), peer(8, { endpoint: null, rttMs: undefined, path: 'relay' })],
      peer: (node) => (node === 7 ? peer(7, { path: 'punched' }) : null),
      recordRtt: (node, ms) => void state.rtts.push([node, ms]),
    },
    endpoint: { connectionCount: 3 },
    session: {
      hostname: 'alpha',
      connected: true,
      lastHeartbeatAgoMs: () => 2_500,
      setHostname: async (name) => {
        calls.push(`setHostname ${name}`)
        return name
      },
    },
    store: {
      isTrusted: (node: number) => node === 7,
      listTrusted: () => [{ node_id: 7, public_key: 'k', approved_at: '2026-01-01T00:00:00Z', mutual: true }],
      listPending: () => [{ node_id: 9, received_at: '2026-01-02T00:00:00Z' }],
      listOutgoing: () => [{ node_id: 11, sent_at: '2026-01-03T00:00:00Z' }],
      unsavedReason: null,
    } as unknown as ControlApiOptions['store'],
    trust: {
      autoAccept: false,
      request: async (node: number, reason: string) => {
        calls.push(`request ${node} ${reason}`)
        return 'sent' as const
      },
      approve: async (node: number) => void calls.push(`approve ${node}`),
      reject: async (node: number, reason: string) => void calls.push(`reject ${node} ${reason}`),
      revoke: async (node: number) => void calls.push(`revoke ${node}`),
    } as unknown as ControlApiOptions['trust'],
    names: {
      resolveTarget: async (target: string) => {
        if (target === 'nobody') throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, 'no node is called "nobody"')
        return { node: 7, hostname: target === 'bravo' ? 'bravo' : null, network: 0 }
      },
      resolve: async (target: string) => ({ address: target, node_id: 7, ipv6: '', hostname: null }),
      displayHostname: async (node: number) => (node === 7 ? 'bravo' : null),
    } as unknown as ControlApiOptions['names'],
    streams: {
      openStream: async (node, port) => {
        calls.push(`open ${typeof node === 'number' ? node : node.node}:${port}`)
        return echoStream()
      },
      checkOpen: () => {
        if (state.closing) throw daemonClosedError()
      },
    },
    tun: null,
    requestClose: () => void state.closeRequests++,
    ...overrides,
  }
  return { api: new ControlApi(options), calls, state }
}

test('status reports identity, endpoints (IPv6 bracketed), registry, counts and uptime', async () => {
  const { api } = fakes()
  const s = await api.status()
  assert.deepEqual(s, {
    version: '1.2.3',
    node_id: 42,
    address: '0:0000.0000.002A',
    ipv6: pilotToIpv6Text({ network: 0, node: 42 }, DEFAULT_OVERLAY_PREFIX),
    hostname: 'alpha',
    public: true,
    uptime_s: 65,
    listen: '0.0.0.0:4000',
    public_endpoint: '[2001:db8::42]:4000',
    registry: { address: 'registry.example:9000', front_end: 'registry.example:9000', connected: true, last_heartbeat_s_ago: 2, tls_pin: null },
    beacon: { address: null },
    kdf: 'auto',
    auto_accept: false,
    peers: 2,
    connections: 3,
    trust_unsaved: null,
    datapath: { aead: loadDatapathAddon() === null ? 'node' : 'openssl', send: 'dgram', receive: 'dgram' },
    tun: null,
  })
  const tun = { interface: 'pilot0', address: 'fd50::1', prefix: 'fd50:494c:4f54::/48', mtu: 65520, dns: 'off' }
  assert.deepEqual((await fakes({ tun: { status: () => tun } }).api.status()).tun, tun)
})

test('status names the data path of a real UDP bind: sendmmsg + GSO out, recvmmsg + GRO in (Linux, addon built)', { skip: process.platform !== 'linux' }, async () => {
  const bind = await UdpBind.open({ host: '127.0.0.1' })
  try {
    const { api } = fakes({ bind })
    assert.deepEqual((await api.status()).datapath, { aead: 'openssl', send: 'sendmmsg+gso', receive: 'recvmmsg+gro' })
  } finally {
    await bind.close()
  }
})

test('status shows the IPv6 address in the configured prefix, not the default one', async () => {
  const { api } = fakes({ prefix: parseOverlayPrefix('fd12:3456:789a::/48') })
  assert.equal((await api.status()).ipv6, 'fd12:3456:789a::2a')
})

test('peers: one row per tunnel peer with hostname, trust, rounded RTT and age', async () => {
  const { api } = fakes()
  const [p7, p8] = await api.peers()
  assert.deepEqual(p7, {
    node_id: 7,
    address: '0:0000.0000.0007',
    hostname: 'bravo',
    path: 'direct',
    endpoint: '[2001:db8::9]:4000',
    rtt_ms: 1.235,
    kdf: 'hkdf',
    kdf_confirmed: true,
    authenticated: true,
    trusted: true,
    bytes_in: 10,
    bytes_out: 20,
    last_seen_s_ago: 3,
  })
  assert.equal(p8!.endpoint, null)
  assert.equal(p8!.rtt_ms, null)
  assert.equal(p8!.trusted, false)
  assert.equal(p8!.hostname, null)
  assert.equal(p8!.last_seen_s_ago, null)
})

test('ping: an echo round trip on port 7, the RTT recorded on the tunnel, the path reported', async () => {
  const { api, calls, state } = fakes()
  const r = await api.ping('bravo', 2_000)
  assert.deepEqual(calls, [`open 7:${ECHO_PORT}`])
  assert.equal(r.address, '0:0000.0000.0007')
  assert.equal(r.hostname, 'bravo')
  assert.equal(r.path, 'punched')
  assert.ok(r.rtt_ms >= 0)
  assert.equal(state.rtts.length, 1)
  assert.equal(state.rtts[0]![0], 7)
})

test('ping: no connect and no echo within the timeout are PT_PING_TIMEOUT; the stream is destroyed', async () => {
  const never = fakes({ streams: { openStream: () => new Promise(() => {}), checkOpen: () => {} } })
  await assert.rejects(never.api.ping('bravo', 50), { code: 'PT_PING_TIMEOUT' })
  const silent = new Duplex({ read() {}, write: (_c, _e, cb) => cb() })
  const mute = fakes({ streams: { openStream: async () => silent as unknown as PilotStream, checkOpen: () => {} } })
  await assert.rejects(mute.api.ping('bravo', 50), { code: 'PT_PING_TIMEOUT' })
  assert.equal(silent.destroyed, true)
})

test('trust commands resolve the target, call the trust service and answer with the node ID', async () => {
  const { api, calls } = fakes()
  assert.deepEqual(await api.trustRequest('bravo', 'hello'), { status: 'sent', node_id: 7 })
  assert.deepEqual(await api.trustApprove('bravo'), { status: 'approved', node_id: 7 })
  assert.deepEqual(await api.trustReject('bravo', 'no'), { status: 'rejected', node_id: 7 })
  assert.deepEqual(await api.trustRevoke('bravo'), { status: 'revoked', node_id: 7 })
  assert.deepEqual(calls, ['request 7 hello', 'approve 7', 'reject 7 no', 'revoke 7'])
  await assert.rejects(api.trustApprove('nobody'), { code: 'PT_NAME_NOT_FOUND' })
  assert.deepEqual(await api.trustList(), {
    trusted: [{ node_id: 7, address: '0:0000.0000.0007', approved_at: '2026-01-01T00:00:00Z', mutual: true }],
    pending: [{ node_id: 9, address: '0:0000.0000.0009', justification: '', received_at: '2026-01-02T00:00:00Z' }],
    outgoing: [{ node_id: 11, address: '0:0000.0000.000B', sent_at: '2026-01-03T00:00:00Z' }],
  })
  assert.deepEqual(await api.setHostname('charlie'), { hostname: 'charlie' })
  assert.deepEqual(await api.resolve('x'), { address: 'x', node_id: 7, ipv6: '', hostname: null })
})

test('once closing, commands that act are PT_DAEMON_CLOSED; reading ones still answer', async () => {
  const { api, calls, state } = fakes()
  state.closing = true
  for (const p of [api.ping('bravo', 1_000), api.trustRequest('bravo', ''), api.trustApprove('bravo'), api.trustReject('bravo', ''), api.trustRevoke('bravo'), api.setHostname('x')]) {
    await assert.rejects(p, { code: 'PT_DAEMON_CLOSED' })
  }
  assert.deepEqual(calls, [])
  assert.equal((await api.status()).node_id, 42)
  assert.equal((await api.trustList()).trusted.length, 1)
})

test('shutdown answers first and asks for the close right after', async () => {
  const { api, state } = fakes()
  await api.shutdown()
  assert.equal(state.closeRequests, 0)
  await new Promise((r) => setImmediate(r))
  assert.equal(state.closeRequests, 1)
})
