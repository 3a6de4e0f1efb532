// A peer that behaves like the Go snapshot daemon on the wire (docs/wire.md §5.7, §22 and
// the lo-session1 capture): PILA only, 136 bytes, legacy KDF without AAD, a new session
// (fresh prefix, counter 1) for every accepted PILA, a PILA reply only for a new or
// changed peer key, one PILA per packet sent while it has no session.
import {
  Identity,
  NonceSequence,
  TunnelCipher,
  X25519KeyPair,
  signPila,
  verifyPila,
} from '../../src/crypto/index.js'
import { CryptoRandom } from '../../src/random.js'
import { PacketHeader, decodePacket } from '../../src/protocol/header.js'
import { decodePila, decodePils, encodePila, encodePils } from '../../src/protocol/tunnel-frames.js'
import type { MemoryBind } from '../../src/tunnel/testing/memory-bind.js'

export class GoLikePeer {
  readonly identity = Identity.generate()
  readonly x25519 = X25519KeyPair.generate()
  private cipher: TunnelCipher | null = null
  private seq: NonceSequence | null = null
  private peerX: Buffer | null = null
  private endpoint: { host: string; port: number } | null = null
  private readonly queue: Buffer[] = []
  private readonly random = new CryptoRandom()
  readonly received: string[] = []
  pilasSent = 0
  pilasAccepted = 0
  decryptFailures = 0

  constructor(
    readonly id: number,
    readonly bind: MemoryBind,
    /** Registry keys by node ID. */
    private readonly registry: Map<number, Uint8Array>,
  ) {
    bind.onDatagram((d, host, port) => this.onDatagram(d, host, port))
  }

  pila(): Buffer {
    return encodePila({
      senderId: this.id,
      x25519Public: this.x25519.publicKey,
      ed25519Public: this.identity.publicKey,
      signature: signPila(this.identity, this.id, this.x25519.publicKey),
    })
  }

  /** Like Go's send to a peer with a known endpoint. */
  send(to: { host: string; port: number }, packet: Buffer): void {
    this.endpoint ??= to
    if (this.cipher === null) {
      this.sendPila()
      this.queue.push(packet)
      return
    }
    this.seal(packet)
  }

  private sendPila(): void {
    this.pilasSent++
    this.bind.send(this.pila(), this.endpoint!.host, this.endpoint!.port)
  }

  private seal(packet: Buffer): void {
    const nonce = new Uint8Array(12)
    this.seq!.next(nonce, 0)
    const sealed = new Uint8Array(packet.length + 16)
    this.cipher!.sealFrame(this.id, nonce, packet, sealed, 0)
    this.bind.send(encodePils(this.id, nonce, sealed), this.endpoint!.host, this.endpoint!.port)
  }

  private onDatagram(d: Buffer, host: string, port: number): void {
    const magic = d.toString('latin1', 0, 4)
    if (magic === 'PILA') {
      const f = decodePila(d) // trailing bytes ignored, as in Go
      const key = this.registry.get(f.senderId)
      if (!key || !Buffer.from(key).equals(Buffer.from(f.ed25519Public))) return
      if (!verifyPila(key, f.senderId, f.x25519Public, f.signature)) return
      const changed = this.peerX === null || !this.peerX.equals(Buffer.from(f.x25519Public))
      this.peerX = Buffer.from(f.x25519Public)
      // New session object for every accepted PILA: same key, new prefix, counter restarts at 1.
      this.cipher = TunnelCipher.agree(this.x25519, this.peerX, 'legacy')
      this.seq = new NonceSequence(this.random)
      this.endpoint = { host, port }
      this.pilasAccepted++
      if (changed) this.sendPila()
      for (const p of this.queue.splice(0)) this.seal(p)
    } else if (magic === 'PILS') {
      if (this.cipher === null) return // "encrypted packet from node but no key"
      const f = decodePils(d)
      const out = new Uint8Array(f.sealed.length)
      const n = this.cipher.openFrame(f.senderId, f.nonce, f.sealed, out, 0)
      if (n < 0) {
        this.decryptFailures++
        return
      }
      const h = decodePacket(out.subarray(0, n), 0, new PacketHeader())
      this.received.push(Buffer.from(out.subarray(34, 34 + h.payloadLength)).toString())
    }
  }
}
