// The NAT classifier: observations in, verdict out (src/netcheck/classify.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { classifyNat, type NatObservations } from '../../src/netcheck/classify.js'

const LOCAL = { addresses: ['10.0.0.2', '127.0.0.1'], port: 4000 }
const PUBLIC = { host: '203.0.113.7', port: 4000 }

/** A cone NAT seen through both probes, with the filtering results given. */
function obs(over: Partial<NatObservations>): NatObservations {
  return {
    local: LOCAL,
    primary: PUBLIC,
    probesAnswered: true,
    mappings: [
      { towards: 'other-port', observed: PUBLIC },
      { towards: 'other-address', observed: PUBLIC },
    ],
    filtering: [
      { from: 'other-port', received: true },
      { from: 'other-address', received: true },
    ],
    ...over,
  }
}

test('no UDP answer: unknown, and the note says why', () => {
  const v = classifyNat(obs({ primary: null, probesAnswered: false, mappings: [], filtering: [] }))
  assert.equal(v.kind, 'unknown')
  assert.equal(v.mapping, 'unknown')
  assert.match(v.notes.join(' '), /never answered over UDP/)
})

test('the public endpoint is one of ours: none; an open host and a firewalled one differ in the description', () => {
  const open = classifyNat(obs({ primary: { host: '10.0.0.2', port: 4000 } }))
  assert.equal(open.kind, 'none')
  assert.equal(open.description, 'none (public endpoint is local)')
  const walled = classifyNat(obs({ primary: { host: '10.0.0.2', port: 4000 }, filtering: [{ from: 'other-port', received: false }] }))
  assert.equal(walled.kind, 'none')
  assert.match(walled.description, /firewall/)
  assert.equal(walled.filtering, 'address-and-port-dependent')
})

test('a local address on another port is a translation, not "none"', () => {
  const v = classifyNat(obs({ primary: { host: '10.0.0.2', port: 61000 }, mappings: [{ towards: 'other-port', observed: { host: '10.0.0.2', port: 61000 } }] }))
  assert.notEqual(v.kind, 'none')
})

test('cone mappings: the filtering results pick full, restricted or port-restricted', () => {
  const cases: Array<[boolean, boolean, string, string]> = [
    [true, true, 'full-cone', 'endpoint-independent'],
    [true, false, 'restricted-cone', 'address-dependent'],
    [false, false, 'port-restricted-cone', 'address-and-port-dependent'],
  ]
  for (const [port, address, kind, filtering] of cases) {
    const v = classifyNat(obs({ filtering: [{ from: 'other-port', received: port }, { from: 'other-address', received: address }] }))
    assert.equal(v.kind, kind, `port ${port}, address ${address}`)
    assert.equal(v.filtering, filtering)
    assert.equal(v.mapping, 'endpoint-independent')
    assert.deepEqual(v.notes, [])
  }
})

test('one beacon address only: a cone that lets another port in is "full or address-restricted: unknown"', () => {
  const v = classifyNat(
    obs({ mappings: [{ towards: 'other-port', observed: PUBLIC }], filtering: [{ from: 'other-port', received: true }] }),
  )
  assert.equal(v.kind, 'cone')
  assert.equal(v.description, 'cone (full or address-restricted: unknown)')
  assert.equal(v.filtering, 'endpoint-independent-or-address-dependent')
  assert.equal(v.notes.length, 2, v.notes.join('\n')) // the filtering and the mapping were each seen from one address
})

test('one beacon address only: a cone that stops another port is port-restricted for sure', () => {
  const v = classifyNat(obs({ mappings: [{ towards: 'other-port', observed: PUBLIC }], filtering: [{ from: 'other-port', received: false }] }))
  assert.equal(v.kind, 'port-restricted-cone')
})

test('another address stopped, another port untested: "address- or port-restricted"', () => {
  const v = classifyNat(obs({ filtering: [{ from: 'other-address', received: false }] }))
  assert.equal(v.kind, 'cone')
  assert.match(v.description, /address- or port-restricted/)
})

test('a new public port for another destination port is symmetric (address-and-port-dependent)', () => {
  const v = classifyNat(
    obs({
      mappings: [{ towards: 'other-port', observed: { host: PUBLIC.host, port: 51234 } }, { towards: 'other-address', observed: { host: PUBLIC.host, port: 40999 } }],
      filtering: [{ from: 'other-port', received: false }, { from: 'other-address', received: false }],
    }),
  )
  assert.equal(v.kind, 'symmetric')
  assert.equal(v.mapping, 'address-and-port-dependent')
})

test('a new mapping only for another address is address-dependent, still symmetric', () => {
  const v = classifyNat(obs({ mappings: [{ towards: 'other-port', observed: PUBLIC }, { towards: 'other-address', observed: { host: PUBLIC.host, port: 4001 } }] }))
  assert.equal(v.kind, 'symmetric')
  assert.equal(v.mapping, 'address-dependent')
})

test('a beacon without probe ports: behind NAT, kind unknown, and the note names the reason', () => {
  const v = classifyNat(obs({ probesAnswered: false, mappings: [], filtering: [] }))
  assert.equal(v.kind, 'unknown')
  assert.equal(v.description, 'behind NAT (kind unknown)')
  assert.match(v.notes.join(' '), /no netcheck probe ports/)
  // The same beacon still says "none" for a public host: that needs no probes.
  assert.equal(classifyNat(obs({ primary: { host: '127.0.0.1', port: 4000 }, probesAnswered: false, mappings: [], filtering: [] })).kind, 'none')
})

test('probe ports that never answer the mapping Discover leave the kind unknown', () => {
  const v = classifyNat(obs({ mappings: [{ towards: 'other-port', observed: null }, { towards: 'other-address', observed: null }] }))
  assert.equal(v.kind, 'unknown')
  assert.equal(v.filtering, 'endpoint-independent') // what was seen is still reported
  assert.match(v.notes.join(' '), /no probe port answered/)
})

test('an unanswered probe does not hide a change seen by the other one', () => {
  const v = classifyNat(obs({ mappings: [{ towards: 'other-port', observed: null }, { towards: 'other-address', observed: { host: PUBLIC.host, port: 1 } }] }))
  assert.equal(v.kind, 'symmetric')
  assert.match(v.notes.join(' '), /may depend on the port as well/)
})
