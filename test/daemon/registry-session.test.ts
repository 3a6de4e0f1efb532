// registerNode and RegistrySession against a scripted registry client: the
// first registration is handed over whole, relayed handshakes reach the
// handler from the very first poll, re-registration after failures.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RegistryDirectory, RegistrySession, registerNode, type Registration, type SessionClient } from '../../src/daemon/registry-session.js'
import { PilotError } from '../../src/errors.js'
import type { HandshakeInbox, RegistryClient } from '../../src/registry/client.js'

const EMPTY: HandshakeInbox = { requests: [], responses: [] }

/** A registry client that records calls and answers from a script. */
function scriptedClient(nodeIds: number[] = [42]) {
  const calls: string[] = []
  const state = {
    heartbeatFails: false,
    hostnameTaken: false,
    inboxes: [] as HandshakeInbox[],
    listenAddrs: [] as string[],
  }
  const client: SessionClient = {
    async register(o: { listenAddr: string; owner?: string }) {
      calls.push(`register${o.owner === undefined ? '' : ` owner=${o.owner}`}`)
      state.listenAddrs.push(o.listenAddr)
      const nodeId = nodeIds.length > 1 ? nodeIds.shift()! : nodeIds[0]!
      return { nodeId, address: `0:0000.0000.${nodeId.toString(16).padStart(4, '0')}`, publicKey: 'k' }
    },
    async setVisibility(nodeId: number, isPublic: boolean) {
      calls.push(`set_visibility ${nodeId} ${isPublic}`)
      return { visibility: isPublic ? ('public' as const) : ('private' as const) }
    },
    async setHostname(nodeId: number, hostname: string) {
      calls.push(`set_hostname ${nodeId} ${hostname}`)
      if (state.hostnameTaken) throw new PilotError('PT_REGISTRY_ERROR', 'hostname taken')
      return { hostname }
    },
    async heartbeat(nodeId: number) {
      calls.push(`heartbeat ${nodeId}`)
      if (state.heartbeatFails) throw new PilotError('PT_REGISTRY_UNREACHABLE', 'registry unreachable')
      return { time: 0 }
    },
    async pollHandshakes(nodeId: number) {
      calls.push(`poll_handshakes ${nodeId}`)
      return state.inboxes.shift() ?? EMPTY
    },
    async deregister(nodeId: number) {
      calls.push(`deregister ${nodeId}`)
    },
  }
  return { client, calls, state }
}

test('registerNode: register, then set_visibility when public, then set_hostname', async () => {
  const { client, calls } = scriptedClient()
  const r = await registerNode(client, { listenAddr: '127.0.0.1:4000', hostname: 'alpha', isPublic: true, owner: 'ops@example' })
  assert.deepEqual(calls, ['register owner=ops@example', 'set_visibility 42 true', 'set_hostname 42 alpha'])
  assert.deepEqual(r, { nodeId: 42, address: '0:0000.0000.002a', listenAddr: '127.0.0.1:4000', hostname: 'alpha' })
})

test('registerNode: a private node without hostname only registers; a taken hostname is logged, not fatal', async () => {
  const plain = scriptedClient()
  const r1 = await registerNode(plain.client, { listenAddr: ':4000', hostname: null, isPublic: false })
  assert.deepEqual(plain.calls, ['register'])
  assert.equal(r1.hostname, undefined)

  const taken = scriptedClient()
  taken.state.hostnameTaken = true
  const warnings: string[] = []
  const logger = { warn: (msg: string) => warnings.push(msg) } as unknown as Parameters<typeof registerNode>[2]
  const r2 = await registerNode(taken.client, { listenAddr: ':4000', hostname: 'alpha', isPublic: false }, logger)
  assert.equal(r2.hostname, undefined, 'not applied')
  assert.deepEqual(warnings, ['hostname not applied'])
})

function session(client: SessionClient, registered: Registration, onInbox: (i: HandshakeInbox) => Promise<void>, extra: { listenAddr?: () => string; onReregistered?: () => Promise<void> } = {}) {
  return new RegistrySession({
    client,
    heartbeatMs: 60_000,
    maxFailures: 2,
    registered,
    listenAddr: extra.listenAddr ?? (() => registered.listenAddr),
    hostname: 'alpha',
    isPublic: false,
    onInbox,
    onReregistered: extra.onReregistered ?? (async () => {}),
  })
}

test('the session starts from the registration it is given: node ID, hostname, connected, one registration', async () => {
  const { client, calls } = scriptedClient()
  const first = await registerNode(client, { listenAddr: '127.0.0.1:4000', hostname: 'alpha', isPublic: false })
  const s = session(client, first, async () => {})
  assert.equal(s.nodeId, 42)
  assert.equal(s.address, '0:0000.0000.002a')
  assert.equal(s.hostname, 'alpha')
  assert.equal(s.connected, true)
  assert.equal(s.registrations, 1)
  assert.ok(s.lastHeartbeatAgoMs() < 1_000)
  calls.length = 0
  await s.stop(100)
  assert.deepEqual(calls, ['deregister 42'])
})

test('handshakes relayed while the node was starting reach the handler at the first poll', async () => {
  const { client, state } = scriptedClient()
  // Queued at the registry before (and while) the node came up.
  state.inboxes.push({ requests: [{ fromNodeId: 7, justification: 'hello', timestamp: 1 }], responses: [{ fromNodeId: 9, accept: true, timestamp: 2 }] })
  const first = await registerNode(client, { listenAddr: '127.0.0.1:4000', hostname: null, isPublic: false })
  const seen: HandshakeInbox[] = []
  const s = session(client, first, async (inbox) => {
    seen.push(inbox)
  })
  await s.heartbeatOnce()
  assert.equal(seen.length, 1)
  assert.deepEqual(seen[0]!.requests.map((r) => r.fromNodeId), [7])
  assert.deepEqual(seen[0]!.responses.map((r) => r.fromNodeId), [9])
  // An empty inbox is not handed on.
  await s.heartbeatOnce()
  assert.equal(seen.length, 1)
  await s.stop(100)
})

test('after maxFailures failed heartbeats the session registers again, re-applies the hostname and reports', async () => {
  const { client, calls, state } = scriptedClient()
  const first = await registerNode(client, { listenAddr: '127.0.0.1:4000', hostname: 'alpha', isPublic: false })
  let reregistered = 0
  const s = session(client, first, async () => {}, { onReregistered: async () => void reregistered++ })
  state.heartbeatFails = true
  await s.heartbeatOnce()
  await s.heartbeatOnce()
  assert.equal(s.connected, false)
  assert.equal(s.heartbeatsFailed, 2)
  state.heartbeatFails = false
  calls.length = 0
  await s.heartbeatOnce()
  assert.deepEqual(calls, ['register', 'set_hostname 42 alpha', 'poll_handshakes 42'])
  assert.equal(s.registrations, 2)
  assert.equal(s.connected, true)
  assert.equal(reregistered, 1)
  await s.stop(100)
})

test('a changed listen address is registered at the next heartbeat', async () => {
  const { client, state } = scriptedClient()
  const first = await registerNode(client, { listenAddr: '10.0.0.1:4000', hostname: null, isPublic: false })
  let announced = '10.0.0.1:4000'
  const s = session(client, first, async () => {}, { listenAddr: () => announced })
  await s.heartbeatOnce()
  assert.deepEqual(state.listenAddrs, ['10.0.0.1:4000'])
  announced = '[2001:db8::1]:4000'
  await s.heartbeatOnce()
  assert.deepEqual(state.listenAddrs, ['10.0.0.1:4000', '[2001:db8::1]:4000'])
  assert.equal(s.registrations, 2)
  await s.stop(100)
})

test('RegistryDirectory reads real_addr with the shared parser: IPv4, bracketed IPv6; anything else is no endpoint', async () => {
  const answers = new Map<number, string>([
    [2, '198.18.1.2:4000'],
    [3, '[2001:db8::3]:4000'],
    [4, '2001:db8::4:4000'],
    [5, 'peer.example:4000'],
    [6, '198.18.1.6:0'],
  ])
  const client = {
    async resolve(_requester: number, nodeId: number) {
      return { nodeId, realAddr: answers.get(nodeId)! }
    },
  } as unknown as RegistryClient
  const dir = new RegistryDirectory({ client, selfId: () => 1 })
  assert.deepEqual(await dir.resolveEndpoint(2), { host: '198.18.1.2', port: 4000 })
  assert.deepEqual(await dir.resolveEndpoint(3), { host: '2001:db8::3', port: 4000 })
  for (const node of [4, 5, 6]) assert.equal(await dir.resolveEndpoint(node), null, answers.get(node))
})

test('while an answer is awaited, poll_handshakes runs between heartbeats; otherwise only after them', async () => {
  const { client, calls, state } = scriptedClient()
  const first = await registerNode(client, { listenAddr: '127.0.0.1:4000', hostname: null, isPublic: false })
  let awaited = false
  const seen: HandshakeInbox[] = []
  const s = new RegistrySession({
    client,
    heartbeatMs: 60_000,
    handshakePollMs: 20,
    handshakesAwaited: () => awaited,
    registered: first,
    listenAddr: () => first.listenAddr,
    hostname: null,
    isPublic: false,
    onInbox: async (inbox) => {
      seen.push(inbox)
    },
    onReregistered: async () => {},
  })
  calls.length = 0
  s.start()
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(calls, [], 'nothing awaited: no poll before the heartbeat')
  awaited = true
  state.inboxes.push({ requests: [], responses: [{ fromNodeId: 9, accept: true, timestamp: 2 }] })
  await new Promise((r) => setTimeout(r, 100))
  assert.ok(calls.length >= 2 && calls.every((c) => c === 'poll_handshakes 42'), calls.join(', '))
  assert.deepEqual(seen.map((i) => i.responses[0]!.fromNodeId), [9], 'the approval arrived long before the 60 s heartbeat')
  await s.stop(100)
  const n = calls.length
  await new Promise((r) => setTimeout(r, 60))
  assert.equal(calls.length, n, 'stop() ends the polls')
})
