// The .pilot DNS responder on a real UDP socket (::1) with a fake daemon: a
// resolver that throws must not take the responder (or the process) down.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { DnsResponder } from '../../src/tun/bridge-dns.js'
import type { BridgeHost } from '../../src/tun/bridge-host.js'
import { DEFAULT_OVERLAY_PREFIX, mapPilotToIpv6 } from '../../src/protocol/ipv6-mapping.js'
import { nullLogger } from '../../src/logger.js'

function query(name: string, id: number): Buffer {
  return Buffer.concat([
    Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, 0, 28, 0, 1]),
  ])
}

/** Sends one query and waits for its answer (null after `timeoutMs`). */
function ask(port: number, name: string, id: number, timeoutMs = 1_000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp6')
    const t = setTimeout(() => {
      s.close()
      resolve(null)
    }, timeoutMs)
    s.on('message', (m) => {
      clearTimeout(t)
      s.close()
      resolve(m)
    })
    s.send(query(name, id), port, '::1')
  })
}

/** Resolves `bob`, throws synchronously for `boom`, answers garbage for `junk`. */
const host = {
  resolve(target: string): Promise<{ node_id: number }> {
    if (target === 'boom') throw new TypeError('resolver bug')
    if (target === 'junk') return Promise.resolve(undefined as unknown as { node_id: number })
    if (target === 'bob') return Promise.resolve({ node_id: 42 })
    return Promise.reject(Object.assign(new Error('no such name'), { code: 'PT_NAME_NOT_FOUND' }))
  },
} as unknown as BridgeHost

test('a resolver that throws is contained: that query fails, the next ones are answered', async () => {
  const dns = new DnsResponder({ host, prefix: DEFAULT_OVERLAY_PREFIX, bindHost: '::1', bindPort: 0, interfaceName: 'none', logger: nullLogger, useResolved: false })
  await dns.start()
  try {
    const boom = await ask(dns.port, 'boom.pilot', 1)
    assert.ok(boom !== null)
    assert.equal(boom[3]! & 0x0f, 2, 'SERVFAIL for the query whose lookup threw')
    assert.equal(dns.stats().handlerErrors, 1, 'counted (and logged)')
    const junk = await ask(dns.port, 'junk.pilot', 2)
    assert.ok(junk !== null)
    assert.equal(junk[3]! & 0x0f, 2, 'SERVFAIL for a lookup that returned nonsense')
    const bob = await ask(dns.port, 'bob.pilot', 3)
    assert.ok(bob !== null, 'the responder still answers')
    assert.equal(bob[3]! & 0x0f, 0)
    assert.ok(Buffer.from(bob.subarray(bob.length - 16)).equals(Buffer.from(mapPilotToIpv6({ network: 0, node: 42 }, DEFAULT_OVERLAY_PREFIX))))
  } finally {
    await dns.close()
  }
})

test('host.netname.pilot: the member\'s address in that network (prefix:N::node), NXDOMAIN when the host says no; host.pilot unchanged', async () => {
  const asked: string[] = []
  const netHost = {
    resolve: host.resolve,
    async resolveInNetwork(netname: string, h: string) {
      asked.push(`${h}.${netname}`)
      return netname === 'lab' && h === 'bob' ? { network: 3, node_id: 42 } : null
    },
  } as unknown as BridgeHost
  const dns = new DnsResponder({ host: netHost, prefix: DEFAULT_OVERLAY_PREFIX, bindHost: '::1', bindPort: 0, interfaceName: 'none', logger: nullLogger, useResolved: false })
  await dns.start()
  try {
    const inNet = await ask(dns.port, 'bob.LAB.pilot', 1)
    assert.ok(inNet !== null)
    assert.equal(inNet[3]! & 0x0f, 0)
    const want = mapPilotToIpv6({ network: 3, node: 42 }, DEFAULT_OVERLAY_PREFIX)
    assert.ok(Buffer.from(inNet.subarray(inNet.length - 16)).equals(Buffer.from(want)), 'prefix:3::42, not the backbone address')
    assert.notDeepEqual(want, mapPilotToIpv6({ network: 0, node: 42 }, DEFAULT_OVERLAY_PREFIX))
    const other = await ask(dns.port, 'bob.ops.pilot', 2)
    assert.equal(other![3]! & 0x0f, 3, 'NXDOMAIN: not a network we share with bob')
    const carol = await ask(dns.port, 'carol.lab.pilot', 3)
    assert.equal(carol![3]! & 0x0f, 3, 'NXDOMAIN: not a member')
    const plain = await ask(dns.port, 'bob.pilot', 4)
    assert.ok(Buffer.from(plain!.subarray(plain!.length - 16)).equals(Buffer.from(mapPilotToIpv6({ network: 0, node: 42 }, DEFAULT_OVERLAY_PREFIX))), 'host.pilot: the backbone address')
    assert.deepEqual(asked, ['bob.lab', 'bob.ops', 'carol.lab'])
  } finally {
    await dns.close()
  }
  // A host without networks: every host.netname.pilot is NXDOMAIN.
  const plainDns = new DnsResponder({ host, prefix: DEFAULT_OVERLAY_PREFIX, bindHost: '::1', bindPort: 0, interfaceName: 'none', logger: nullLogger, useResolved: false })
  await plainDns.start()
  try {
    const r = await ask(plainDns.port, 'bob.lab.pilot', 5)
    assert.equal(r![3]! & 0x0f, 3)
  } finally {
    await plainDns.close()
  }
})
