/**
 * `npm run bench:codec`: operations per second of the per-packet codec work.
 * Prints a table (and JSON with --json). Each case runs for a fixed time after
 * a warm-up; the figure is the median of 5 rounds.
 */
import { PacketHeader, encodePacketInPlace, decodePacket, Flag, Protocol, HEADER_SIZE } from '../src/protocol/header.js'
import { writePilsHeader, decodePils, PILS_HEADER_SIZE, PILS_TAG_SIZE, encodePila, decodePila } from '../src/protocol/tunnel-frames.js'
import { TunnelCipher, NonceSequence } from '../src/crypto/aead.js'
import { Identity, ed25519PublicKeyObject } from '../src/crypto/identity.js'
import { X25519KeyPair } from '../src/crypto/key-agreement.js'
import { signPila, verifyPila } from '../src/crypto/pila.js'
import { CryptoRandom } from '../src/random.js'

const ROUND_MS = 400
const ROUNDS = 5
const PAYLOAD = 1400

function measure(name: string, fn: () => void): { name: string; opsPerSec: number } {
  for (let i = 0; i < 2000; i++) fn() // warm-up: let the JIT settle
  const rates: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    let ops = 0
    const start = process.hrtime.bigint()
    const end = start + BigInt(ROUND_MS) * 1_000_000n
    let now = start
    while (now < end) {
      for (let i = 0; i < 256; i++) fn()
      ops += 256
      now = process.hrtime.bigint()
    }
    rates.push(ops / (Number(now - start) / 1e9))
  }
  rates.sort((a, b) => a - b)
  return { name, opsPerSec: rates[Math.floor(ROUNDS / 2)]! }
}

const h = PacketHeader.from({ flags: Flag.ACK, protocol: Protocol.STREAM, srcNode: 1, dstNode: 2, srcPort: 49152, dstPort: 80, seq: 12345, ack: 678, window: 512 })
const packet = new Uint8Array(HEADER_SIZE + PAYLOAD)
new CryptoRandom().fill(packet.subarray(HEADER_SIZE))
const into = new PacketHeader()

const cipher = new TunnelCipher(new Uint8Array(32).fill(3), 'hkdf')
const nonces = new NonceSequence(new CryptoRandom())
const frame = new Uint8Array(PILS_HEADER_SIZE + packet.length + PILS_TAG_SIZE)
const nonce = new Uint8Array(12)
const opened = new Uint8Array(packet.length)
encodePacketInPlace(h, packet, 0, PAYLOAD)

const identity = Identity.generate()
const x = X25519KeyPair.generate()
const pila = encodePila({ senderId: 7, x25519Public: x.publicKey, ed25519Public: identity.publicKey, signature: signPila(identity, 7, x.publicKey) })
const edKey = ed25519PublicKeyObject(identity.publicKey)

const results = [
  measure(`header encode + CRC (${PAYLOAD} B payload)`, () => { encodePacketInPlace(h, packet, 0, PAYLOAD) }),
  measure('header encode + CRC (empty payload)', () => { encodePacketInPlace(h, packet, 0, 0) }),
  measure(`header decode + CRC check (${PAYLOAD} B payload)`, () => { encodePacketInPlace(h, packet, 0, PAYLOAD); decodePacket(packet, 0, into) }),
  measure(`PILS seal (${PAYLOAD} B packet, hkdf+AAD)`, () => {
    nonces.next(nonce, 0)
    writePilsHeader(frame, 0, 1, nonce)
    cipher.sealFrame(1, nonce, packet, frame, PILS_HEADER_SIZE)
  }),
  measure(`PILS open (${PAYLOAD} B packet, hkdf+AAD)`, () => {
    const f = decodePils(frame)
    if (cipher.openFrame(f.senderId, f.nonce, f.sealed, opened, 0) < 0) throw new Error('open failed')
  }),
  measure('PILA decode + verify', () => {
    const f = decodePila(pila)
    if (!verifyPila(edKey, f.senderId, f.x25519Public, f.signature)) throw new Error('verify failed')
  }),
]
// The header-decode case includes an encode; report the decode alone too.
const enc = results[0]!.opsPerSec
const encDec = results[2]!.opsPerSec
results.splice(3, 0, { name: `  derived: header decode alone (${PAYLOAD} B)`, opsPerSec: 1 / (1 / encDec - 1 / enc) })

if (process.argv.includes('--json')) {
  process.stdout.write(`${JSON.stringify({ node: process.version, results }, null, 2)}\n`)
} else {
  process.stdout.write(`pilot-tun codec benchmark (node ${process.version}, median of ${ROUNDS} × ${ROUND_MS} ms)\n\n`)
  for (const r of results) process.stdout.write(`${r.name.padEnd(48)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(12)} ops/s\n`)
}
