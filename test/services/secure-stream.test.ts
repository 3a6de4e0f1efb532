// The secure channel on in-memory stream pairs: the key swap, an echo both
// ways, large writes split into frames, half-close, the handshake deadline,
// and what a meddler on the stream gets (reflection, replay, garbage).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SecureError } from '../../src/services/secure/errors.js'
import { SECURE_MAX_PLAINTEXT } from '../../src/services/secure/secure-core.js'
import { secureClient, secureServer, type SecureStream } from '../../src/services/secure/secure-stream.js'
import { collect, streamPair } from './helpers.js'

async function connected(clientKdf: 'legacy' | 'hkdf' = 'legacy'): Promise<{ client: SecureStream; server: SecureStream; raw: ReturnType<typeof streamPair> }> {
  const raw = streamPair(1, 2)
  const [client, server] = await Promise.all([secureClient(raw.client, { send: clientKdf }), secureServer(raw.server)])
  // The peer of a channel that fails sees a reset; the tests look at the failing side.
  server.on('error', () => {})
  return { client, server, raw }
}

/** The error `s` ends with (reading it: an unread channel does not look at its frames). */
function errorOf(s: SecureStream): Promise<Error> {
  s.resume()
  return new Promise((resolve) => s.once('error', resolve))
}

test('key swap then an echo: the server answers in the client\'s derivation; each write is one frame, big ones are split', async () => {
  for (const kdf of ['legacy', 'hkdf'] as const) {
    const { client, server, raw } = await connected(kdf)
    assert.deepEqual(client.remoteAddress, { network: 0, node: 2 })
    assert.deepEqual(server.remoteAddress, { network: 0, node: 1 })
    server.pipe(server) // echo
    const onWire: Buffer[] = []
    raw.client.on('data', (c: Buffer) => onWire.push(c))
    const got = collect(client)
    const big = Buffer.alloc(3 * SECURE_MAX_PLAINTEXT + 10, 0x5a)
    client.write('hello')
    client.write(big)
    client.end()
    const all = await got.done
    assert.equal(all.length, 5 + big.length)
    assert.equal(all.subarray(0, 5).toString(), 'hello')
    assert.ok(all.subarray(5).equals(big))
    assert.equal(server.peerKdf, kdf)
    assert.equal(server.kdf, kdf)
    // The bytes on the wire are not the plaintext.
    assert.ok(!Buffer.concat(onWire).includes(Buffer.from('hello')))
  }
})

test('a frame sent back to its sender (reflection) ends the channel with PT_SECURE_REFLECTED', async () => {
  const raw = streamPair(1, 2)
  const serverP = secureServer(raw.server)
  // Tap what the client writes: the meddler will send the client's own frame back to it.
  const clientFrames: Buffer[] = []
  const origWrite = raw.client.write.bind(raw.client)
  ;(raw.client as { write: typeof raw.client.write }).write = ((chunk: Buffer, ...rest: never[]) => {
    clientFrames.push(Buffer.from(chunk))
    return origWrite(chunk, ...rest)
  }) as typeof raw.client.write
  const client = await secureClient(raw.client)
  const server = await serverP
  server.on('error', () => {})
  const serverGot = collect(server)
  client.write('for the server')
  await new Promise((r) => setTimeout(r, 20))
  assert.equal(serverGot.bytes().toString(), 'for the server')
  const failed = errorOf(client)
  raw.server.write(clientFrames[1]!) // [0] is the client's key, [1] its first frame
  const err = await failed
  assert.ok(err instanceof SecureError)
  assert.equal(err.code, 'PT_SECURE_REFLECTED')
  assert.ok(raw.client.destroyed, 'the stream under the channel was reset')
})

test('a replayed frame ends the channel with PT_SECURE_REPLAY; garbage with PT_SECURE_BAD_FRAME / PT_SECURE_AUTH', async () => {
  {
    const raw = streamPair(1, 2)
    const serverFrames: Buffer[] = []
    const origWrite = raw.server.write.bind(raw.server)
    ;(raw.server as { write: typeof raw.server.write }).write = ((chunk: Buffer, ...rest: never[]) => {
      serverFrames.push(Buffer.from(chunk))
      return origWrite(chunk, ...rest)
    }) as typeof raw.server.write
    const [client, server] = await Promise.all([secureClient(raw.client), secureServer(raw.server)])
    server.on('error', () => {})
    const got = collect(client)
    server.write('once')
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(got.bytes().toString(), 'once')
    const failed = errorOf(client)
    origWrite(serverFrames[1]!) // the same frame again
    assert.equal(((await failed) as SecureError).code, 'PT_SECURE_REPLAY')
  }
  {
    const { client, raw } = await connected()
    const failed = errorOf(client)
    raw.server.write(Buffer.from('ffffffff', 'hex'))
    assert.equal(((await failed) as SecureError).code, 'PT_SECURE_BAD_FRAME')
  }
  {
    const { client, raw } = await connected()
    const failed = errorOf(client)
    const forged = Buffer.alloc(4 + 12 + 20, 0x11)
    forged.writeUInt32BE(32, 0)
    forged.writeUInt32BE(1, 4) // the server's prefix, counter 1, junk for ciphertext and tag
    forged.writeUInt32BE(0, 8)
    forged.writeUInt32BE(1, 12)
    raw.server.write(forged)
    assert.equal(((await failed) as SecureError).code, 'PT_SECURE_AUTH')
  }
})

test('key swap: a peer that never sends its key times out; one that closes early fails; neither leaks a timer', async () => {
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const silent = streamPair(1, 2)
  silent.server.on('data', () => {}) // swallows the client's key and answers nothing
  await assert.rejects(secureClient(silent.client, { handshakeTimeoutMs: 100 }), (e: SecureError) => e.code === 'PT_SECURE_HANDSHAKE' && /within 100 ms/.test(e.message))
  assert.ok(silent.client.destroyed)
  const closing = streamPair(1, 2)
  const p = secureServer(closing.server, { handshakeTimeoutMs: 5_000 })
  closing.client.end(Buffer.alloc(10))
  await assert.rejects(p, (e: SecureError) => e.code === 'PT_SECURE_HANDSHAKE' && /after 10 of the 32/.test(e.message))
  await new Promise((r) => setTimeout(r, 10))
  assert.ok(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length <= before, 'no handshake timer left')
})

test('half-close: the client ends, the server still answers, then ends; a stream that ends inside a frame is an error', async () => {
  const { client, server } = await connected()
  const atServer = collect(server)
  const atClient = collect(client)
  client.end('question')
  assert.equal((await atServer.done).toString(), 'question')
  server.end('answer after your FIN')
  assert.equal((await atClient.done).toString(), 'answer after your FIN')

  const cut = await connected()
  const failed = errorOf(cut.client)
  cut.raw.server.end(Buffer.from('0000002000000001', 'hex')) // a length and half a nonce, then FIN
  assert.equal(((await failed) as SecureError).code, 'PT_SECURE_BAD_FRAME')
})
