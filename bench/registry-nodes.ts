/**
 * Simulated nodes for `npm run bench:registry`: Ed25519 identities derived
 * from seeds (SHA-256 of "pilot-regbench:<i>"), so a run is repeatable, and
 * the wire frames they send.
 *
 * Key import: `Identity.fromSeed` (src/crypto/identity.ts) wraps the seed in
 * PKCS#8 DER, which OpenSSL 3 decodes in ~600 µs; 10⁵ nodes would spend a
 * minute there. Importing the same seed as a JWK takes ~60 µs and yields the
 * same key (Node takes `d` and derives the public half itself). `makeNodes`
 * checks, for the first nodes, that public key and signature equal
 * `Identity.fromSeed`'s byte for byte, so the registry sees exactly what
 * pilot-tun identities send. Ed25519 signatures are
 * deterministic and the registry's challenges carry no nonce (wire.md §10.3,
 * §17 item 10), so a node's heartbeat frame is the same bytes every 30 s: it
 * is signed once, after `register` gave the node its ID, and sent as is.
 */
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto'
import { Identity } from '../src/crypto/identity.js'
import { RegistryChallenge } from '../src/registry/challenges.js'
import { frameOf } from './registry-load.js'

/** What a simulated node needs of an identity: Identity's signChallenge, with a faster key import. */
export class SimIdentity {
  readonly publicKey: Uint8Array
  private constructor(private readonly key: KeyObject) {
    const x = createPublicKey(key).export({ format: 'jwk' }).x
    if (typeof x !== 'string') throw new Error('no public key in JWK export')
    this.publicKey = Buffer.from(x, 'base64url')
  }

  static fromSeed(seed: Uint8Array): SimIdentity {
    // `x` is required by the JWK shape; Node derives the public key from `d` (checked in makeNodes).
    const d = Buffer.from(seed).toString('base64url')
    return new SimIdentity(createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d, x: d }, format: 'jwk' }))
  }

  signChallenge(challenge: string): string {
    return sign(null, Buffer.from(challenge, 'utf8'), this.key).toString('base64')
  }
}

export interface SimNode {
  identity: SimIdentity
  publicKey: string
  /** 0 until registered. */
  id: number
  /** The signed heartbeat frame, once registered. */
  heartbeat: Buffer | null
}

export function seedOf(i: number): Buffer {
  return createHash('sha256').update(`pilot-regbench:${i}`).digest()
}

export function makeNodes(count: number): SimNode[] {
  const nodes: SimNode[] = new Array(count)
  for (let i = 0; i < count; i++) {
    const seed = seedOf(i)
    const identity = SimIdentity.fromSeed(seed)
    if (i < 8) sameAsIdentity(identity, seed, i)
    seed.fill(0)
    nodes[i] = { identity, publicKey: Buffer.from(identity.publicKey).toString('base64'), id: 0, heartbeat: null }
  }
  return nodes
}

function sameAsIdentity(sim: SimIdentity, seed: Uint8Array, i: number): void {
  const real = Identity.fromSeed(seed)
  const challenge = `heartbeat:${i + 1}`
  if (!Buffer.from(real.publicKey).equals(Buffer.from(sim.publicKey)) || real.signChallenge(challenge) !== sim.signChallenge(challenge)) {
    throw new Error(`simulated identity ${i} differs from Identity.fromSeed`)
  }
}

/** Microseconds per `Identity.fromSeed` over `count` seeds, for the report. */
export function identityFromSeedMicros(count: number): number {
  const t = performance.now()
  for (let i = 0; i < count; i++) Identity.fromSeed(seedOf(i))
  return ((performance.now() - t) * 1000) / count
}

/** `register` as RegistryClient sends it; each node claims its own UDP port so endpoints differ. */
export function registerFrame(node: SimNode, index: number): Buffer {
  return frameOf({ type: 'register', listen_addr: `0.0.0.0:${1024 + (index % 60_000)}`, public_key: node.publicKey })
}

export function heartbeatFrame(node: SimNode): Buffer {
  return frameOf({ type: 'heartbeat', node_id: node.id, signature: node.identity.signChallenge(RegistryChallenge.heartbeat(node.id)) })
}

export function setVisibilityFrame(node: SimNode, isPublic: boolean): Buffer {
  return frameOf({ type: 'set_visibility', node_id: node.id, public: isPublic, signature: node.identity.signChallenge(RegistryChallenge.setVisibility(node.id)) })
}

export function reportTrustFrame(node: SimNode, peer: SimNode): Buffer {
  return frameOf({ type: 'report_trust', node_id: node.id, peer_id: peer.id, signature: node.identity.signChallenge(RegistryChallenge.reportTrust(node.id, peer.id)) })
}

export function resolveFrame(requester: SimNode, target: SimNode): Buffer {
  return frameOf({
    type: 'resolve',
    node_id: target.id,
    requester_id: requester.id,
    signature: requester.identity.signChallenge(RegistryChallenge.resolve(requester.id, target.id)),
  })
}

/** A small deterministic PRNG (mulberry32) for picking pairs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
