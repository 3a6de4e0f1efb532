// TARGET arguments → node IDs (hostnames, Pilot addresses, overlay IPv6) and
// the display hostname that never waits long on the registry.
import { DEFAULT_OVERLAY_PREFIX, parseOverlayPrefix, type OverlayPrefix } from '../../src/protocol/ipv6-mapping.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TargetResolver } from '../../src/daemon/target-resolver.js'
import { pilotToIpv6Text } from '../../src/protocol/ipv6-mapping.js'
import type { LookupResult } from '../../src/registry/client.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import { codeOf } from './helpers.js'

function entry(nodeId: number, hostname?: string): LookupResult {
  return { nodeId, address: '', publicKey: '', isPublic: false, networks: [0], poloScore: 0, ...(hostname === undefined ? {} : { hostname }) }
}

function resolver(options: { names?: Record<string, number>; lookup?: (node: number) => Promise<LookupResult | null>; cached?: Map<number, LookupResult>; registryDown?: boolean; prefix?: OverlayPrefix } = {}) {
  const asked: string[] = []
  const names = options.names ?? {}
  const r = new TargetResolver({
    prefix: options.prefix ?? DEFAULT_OVERLAY_PREFIX,
    client: {
      async resolveHostname(name: string) {
        asked.push(name)
        if (options.registryDown === true) throw new RegistryError(RegistryErrorCode.UNREACHABLE, 'registry unreachable')
        const nodeId = names[name]
        if (nodeId === undefined) throw new RegistryError(RegistryErrorCode.ERROR, 'not found', { serverError: 'not found' })
        return { nodeId, hostname: name }
      },
    } as never,
    directory: {
      lookup: options.lookup ?? (async (node) => options.cached?.get(node) ?? null),
      peek: (node) => options.cached?.get(node) ?? null,
    },
    displayWaitMs: 50,
  })
  return { r, asked }
}


test('a Pilot address, an overlay IPv6 address and a hostname (case-folded) all name a node', async () => {
  const { r, asked } = resolver({ names: { bravo: 42 } })
  assert.deepEqual(await r.resolveTarget('0:0000.0000.002A'), { node: 42, hostname: null, network: 0 })
  assert.deepEqual(await r.resolveTarget('  0:0000.0001.0000 '), { node: 0x10000, hostname: null, network: 0 })
  assert.deepEqual(await r.resolveTarget(pilotToIpv6Text({ network: 0, node: 42 }, DEFAULT_OVERLAY_PREFIX)), { node: 42, hostname: null, network: 0 })
  assert.deepEqual(await r.resolveTarget('Bravo'), { node: 42, hostname: 'bravo', network: 0 })
  assert.deepEqual(asked, ['bravo'], 'only the hostname asks the registry')
})

test('what is no node is PT_NAME_NOT_FOUND; a registry that cannot be asked keeps its own error', async () => {
  const { r } = resolver()
  assert.equal(await codeOf(r.resolveTarget('nobody')), 'PT_NAME_NOT_FOUND')
  assert.equal(await codeOf(r.resolveTarget('0:0000.0000.00ZZ')), 'PT_NAME_NOT_FOUND')
  assert.equal(await codeOf(r.resolveTarget('1:0001.0000.0002')), 'PT_NAME_NOT_FOUND', 'not the backbone')
  // Where a network address makes sense (ping, resolve), it names the node in that network.
  assert.deepEqual(await r.resolveTarget('1:0001.0000.0002', { anyNetwork: true }), { node: 2, hostname: null, network: 1 })
  assert.deepEqual(await r.resolveTarget('fd50:494c:4f54:1::2', { anyNetwork: true }), { node: 2, hostname: null, network: 1 })
  assert.equal(await codeOf(r.resolveTarget('1:0001.FFFF.FFFF', { anyNetwork: true })), 'PT_NAME_NOT_FOUND', 'broadcast in a network')
  assert.equal(await codeOf(r.resolveTarget('0:0000.0000.0000')), 'PT_NAME_NOT_FOUND', 'node 0')
  assert.equal(await codeOf(r.resolveTarget('0:0000.FFFF.FFFF')), 'PT_NAME_NOT_FOUND', 'broadcast')
  assert.equal(await codeOf(r.resolveTarget('2001:db8::1')), 'PT_NAME_NOT_FOUND', 'outside the overlay prefix')
  const down = resolver({ registryDown: true })
  assert.equal(await codeOf(down.r.resolveTarget('bravo')), 'PT_REGISTRY_UNREACHABLE')
})

test('resolve fills in address, IPv6 and the hostname (looked up for an address target)', async () => {
  const { r } = resolver({ names: { bravo: 42 }, cached: new Map([[42, entry(42, 'bravo')]]) })
  assert.deepEqual(await r.resolve('bravo'), { address: '0:0000.0000.002A', node_id: 42, ipv6: pilotToIpv6Text({ network: 0, node: 42 }, DEFAULT_OVERLAY_PREFIX), hostname: 'bravo' })
  assert.equal((await r.resolve('0:0000.0000.002A')).hostname, 'bravo')
  assert.equal((await r.resolve('0:0000.0000.0007')).hostname, null)
})

test('displayHostname: a slow or failing registry falls back to the last answer, soon', async () => {
  const cached = new Map([[5, entry(5, 'old-name')]])
  const slow = resolver({ cached, lookup: () => new Promise(() => {}) })
  const started = performance.now()
  assert.equal(await slow.r.displayHostname(5), 'old-name')
  assert.ok(performance.now() - started < 1_000)
  assert.equal(await slow.r.displayHostname(6), null)
  const failing = resolver({ cached, lookup: async () => Promise.reject(new Error('down')) })
  assert.equal(await failing.r.displayHostname(5), 'old-name')
  const fresh = resolver({ cached, lookup: async (n) => entry(n, 'new-name') })
  assert.equal(await fresh.r.displayHostname(5), 'new-name')
})

test('a non-default prefix: its addresses name nodes, the default prefix does not, and resolve shows the configured IPv6', async () => {
  const prefix = parseOverlayPrefix('fd12:3456:789a::/48')
  const { r } = resolver({ names: { bravo: 42 }, prefix })
  assert.deepEqual(await r.resolveTarget('fd12:3456:789a::2a'), { node: 42, hostname: null, network: 0 })
  assert.equal(await codeOf(r.resolveTarget('fd50:494c:4f54::2a')), 'PT_NAME_NOT_FOUND', 'the default prefix is not ours')
  const hint = await r.resolveTarget('fd50:494c:4f54::2a').catch((err: { hint?: string }) => err.hint)
  assert.match(String(hint), /fd12:3456:789a::\/48/, 'the hint names the configured prefix')
  assert.equal((await r.resolve('bravo')).ipv6, 'fd12:3456:789a::2a')
  assert.equal((await r.resolve('0:0000.0000.002A')).ipv6, 'fd12:3456:789a::2a')
})
