import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CryptoError } from '../../src/errors.js'
import { Identity, parseIdentityFile } from '../../src/crypto/identity.js'
import { loadIdentityFile, loadOrCreateIdentity, saveIdentityFile } from '../../src/daemon/identity-file.js'
import { fromHex, hex } from '../crypto/helpers.js'

const SEED = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')
const GO_FILE = `{
  "private_key": "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==",
  "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
}`

let dir = ''
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pilot-tun-identity-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const isCode = (code: string) => (e: unknown) => e instanceof CryptoError && e.code === code

async function writeKeyFile(name: string, text: string, mode = 0o600): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, text, { mode })
  await chmod(path, mode)
  return path
}

test('save then load: same key, mode 0600, parent created 0700, no temp file left', async () => {
  const path = join(dir, 'nested', 'deeper', 'identity.json')
  const identity = Identity.generate()
  await saveIdentityFile(path, identity)
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  assert.equal((await stat(join(dir, 'nested', 'deeper'))).mode & 0o777, 0o700)
  assert.equal((await stat(join(dir, 'nested'))).mode & 0o777, 0o700)
  assert.deepEqual(await readdir(join(dir, 'nested', 'deeper')), ['identity.json'])

  const loaded = await loadIdentityFile(path)
  assert.equal(hex(loaded.publicKey), hex(identity.publicKey))
  assert.equal(hex(loaded.sign(new Uint8Array([1, 2, 3]))), hex(identity.sign(new Uint8Array([1, 2, 3]))))

  // Saving again replaces the file atomically and keeps the mode.
  const other = Identity.generate()
  await saveIdentityFile(path, other)
  assert.equal(hex((await loadIdentityFile(path)).publicKey), hex(other.publicKey))
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  assert.deepEqual(await readdir(join(dir, 'nested', 'deeper')), ['identity.json'])
})

test('a file written by Go loads', async () => {
  const path = await writeKeyFile('go.json', GO_FILE)
  assert.equal(hex((await loadIdentityFile(path)).publicKey), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
})

test('a key file readable by group or others is refused with a chmod hint', async () => {
  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o700 | 0o010]) {
    const path = await writeKeyFile(`mode-${mode.toString(8)}.json`, GO_FILE, mode)
    await assert.rejects(loadIdentityFile(path), (e: unknown) => {
      assert.ok(e instanceof CryptoError)
      assert.equal(e.code, 'PT_CRYPTO_KEY_FILE_MODE')
      assert.equal(e.hint, `chmod 600 ${path}`)
      assert.match(e.message, new RegExp(mode.toString(8)))
      return true
    })
  }
  const ok = await writeKeyFile('mode-400.json', GO_FILE, 0o400)
  await loadIdentityFile(ok)
})

test('a public key that does not match the seed is refused', async () => {
  const doc = JSON.parse(GO_FILE)
  const otherPublic = Buffer.from(Identity.generate().publicKey).toString('base64')
  const wrongPublicField = await writeKeyFile('mismatch1.json', JSON.stringify({ ...doc, public_key: otherPublic }))
  await assert.rejects(loadIdentityFile(wrongPublicField), isCode('PT_CRYPTO_KEY_MISMATCH'))

  const both = Buffer.from(doc.private_key, 'base64')
  both[40]! ^= 1 // the public half inside private_key
  const wrongPrivateHalf = await writeKeyFile('mismatch2.json', JSON.stringify({ ...doc, private_key: both.toString('base64') }))
  await assert.rejects(loadIdentityFile(wrongPrivateHalf), isCode('PT_CRYPTO_KEY_MISMATCH'))
})

test('malformed files are refused with a typed error naming the problem', async () => {
  const doc = JSON.parse(GO_FILE)
  const cases: Array<[string, string, RegExp]> = [
    ['garbage', 'not json at all {', /not valid JSON/],
    ['array', '[1,2]', /not a JSON object/],
    ['null', 'null', /not a JSON object/],
    ['no private', JSON.stringify({ public_key: doc.public_key }), /"private_key" is missing/],
    ['no public', JSON.stringify({ private_key: doc.private_key }), /"public_key" is missing/],
    ['number', JSON.stringify({ ...doc, private_key: 5 }), /"private_key" is missing or not a string/],
    ['bad base64', JSON.stringify({ ...doc, private_key: 'not base64!' }), /"private_key" is not standard base64/],
    ['url base64', JSON.stringify({ ...doc, public_key: doc.public_key.replace('/', '_') }), /"public_key" is not standard base64/],
    ['seed only', JSON.stringify({ ...doc, private_key: Buffer.from(SEED).toString('base64') }), /must be 64 bytes/],
    ['short public', JSON.stringify({ ...doc, public_key: 'AAAA' }), /"public_key" must be 32 bytes/],
  ]
  for (const [name, text, message] of cases) {
    assert.throws(() => parseIdentityFile(text, name), (e: unknown) => {
      assert.ok(e instanceof CryptoError, name)
      assert.equal(e.code, 'PT_CRYPTO_KEY_FILE_MALFORMED', name)
      assert.match(e.message, message, name)
      return true
    })
    const path = await writeKeyFile(`bad-${name.replace(/ /g, '-')}.json`, text)
    await assert.rejects(loadIdentityFile(path), isCode('PT_CRYPTO_KEY_FILE_MALFORMED'), name)
  }
})

test('a missing file is PT_CRYPTO_KEY_FILE_MISSING; a directory is refused; loadOrCreate creates once', async () => {
  const path = join(dir, 'fresh', 'identity.json')
  await assert.rejects(loadIdentityFile(path), isCode('PT_CRYPTO_KEY_FILE_MISSING'))
  await assert.rejects(loadIdentityFile(dir), (e: unknown) => e instanceof CryptoError)
  const first = await loadOrCreateIdentity(path)
  assert.equal(first.created, true)
  const second = await loadOrCreateIdentity(path)
  assert.equal(second.created, false)
  assert.equal(hex(second.identity.publicKey), hex(first.identity.publicKey))
  assert.ok((await readFile(path, 'utf8')).startsWith('{\n  "private_key": "'))
})
