// The DER encoder and the registry's self-signed certificate (issue 15):
// known encodings, and the certificate as node:crypto and openssl read it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto'
import { derBitString, derLength, derOid, derSmallInteger, derTime, derUnsignedInteger } from '../../src/crypto/der.js'
import { CERT_VALIDITY_MS, certificatePin, createSelfSignedCertificate } from '../../src/crypto/x509.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('DER: lengths, integers, OIDs, bit strings and both time forms encode as X.690 says', () => {
  assert.equal(hex(derLength(0)), '00')
  assert.equal(hex(derLength(127)), '7f')
  assert.equal(hex(derLength(128)), '8180')
  assert.equal(hex(derLength(256)), '820100')
  assert.equal(hex(derLength(70_000)), '83011170')
  assert.equal(hex(derSmallInteger(0)), '020100')
  assert.equal(hex(derSmallInteger(2)), '020102')
  assert.equal(hex(derSmallInteger(128)), '02020080', 'a set top bit gets a 0x00 in front')
  assert.equal(hex(derUnsignedInteger(Uint8Array.of(0, 0, 0x7f))), '02017f', 'leading zeros dropped')
  assert.equal(hex(derOid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302', 'ecdsa-with-SHA256')
  assert.equal(hex(derOid('2.5.29.17')), '0603551d11', 'subjectAltName')
  assert.equal(hex(derBitString(Uint8Array.of(0xa0), 5)), '030205a0', 'keyUsage digitalSignature|keyEncipherment')
  assert.equal(Buffer.from(derTime(Date.UTC(2026, 11, 6, 15, 21, 56))).toString('latin1').slice(2), '261206152156Z')
  assert.equal(derTime(Date.UTC(2026, 0, 1))[0], 0x17, 'UTCTime before 2050')
  assert.equal(Buffer.from(derTime(Date.UTC(2050, 0, 1))).toString('latin1').slice(2), '20500101000000Z', 'GeneralizedTime from 2050')
  for (const bad of ['1', '3.1', '1.40', 'a.b', '1..2']) assert.throws(() => derOid(bad), /OID|dotted/, bad)
  assert.throws(() => derLength(-1))
  assert.throws(() => derBitString(Uint8Array.of(), 3))
})

test('the self-signed certificate: P-256, O=Pilot Protocol, one year, SAN localhost/127.0.0.1/::1, verifies with its own key', () => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 0)
  const made = createSelfSignedCertificate({ now })
  const x = new X509Certificate(made.der)
  assert.equal(x.subject, 'O=Pilot Protocol')
  assert.equal(x.issuer, 'O=Pilot Protocol')
  assert.equal(x.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1')
  assert.equal(Date.parse(x.validFrom), now)
  assert.equal(Date.parse(x.validTo), now + CERT_VALIDITY_MS)
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1')
  assert.ok(x.verify(x.publicKey), 'self-signed: the signature verifies with its own key')
  assert.ok(x.checkPrivateKey(made.privateKey))
  assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage: serverAuth')
  assert.equal(x.serialNumber.length, 32, '128-bit serial')
  assert.ok(parseInt(x.serialNumber.slice(0, 2), 16) < 0x80, 'positive serial')
  // The pin: lower-case hex SHA-256 of the DER, i.e. the fingerprint without colons.
  const pin = certificatePin(made.der)
  assert.match(pin, /^[0-9a-f]{64}$/)
  assert.equal(pin, createHash('sha256').update(made.der).digest('hex'))
  assert.equal(pin, x.fingerprint256.replace(/:/g, '').toLowerCase())
  assert.equal(new X509Certificate(made.certPem).raw.equals(made.der), true, 'the PEM holds the same DER')
})

test('the certificate is a function of key, time and serial (same inputs, same DER); each new one has its own pin', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const inputs = { privateKey, now: 1_800_000_000_000, serial: Buffer.alloc(16, 0x42) }
  const a = createSelfSignedCertificate(inputs)
  const b = createSelfSignedCertificate(inputs)
  // ECDSA signatures are randomised, so compare the signed part (Certificate = SEQUENCE { tbs, algorithm, signature }).
  const tbs = (der: Buffer): Buffer => {
    assert.equal(der[1], 0x82, 'two length bytes')
    assert.equal(der[5], 0x82)
    return der.subarray(4, 8 + der.readUInt16BE(6))
  }
  assert.ok(tbs(a.der).equals(tbs(b.der)))
  assert.ok(tbs(a.der).includes(Buffer.alloc(15, 0x42)), 'the serial is the given one (top bit cleared)')
  assert.notEqual(certificatePin(createSelfSignedCertificate().der), certificatePin(createSelfSignedCertificate().der))
  const ed = generateKeyPairSync('ed25519').privateKey
  assert.throws(() => createSelfSignedCertificate({ privateKey: ed }), (e: Error & { code?: string }) => e.code === 'PT_CRYPTO_BAD_KEY')
})

test('openssl reads the certificate as the reference\'s: key usage critical, serverAuth, ecdsa-with-SHA256', (t) => {
  const made = createSelfSignedCertificate()
  let text: string
  try {
    text = execFileSync('openssl', ['x509', '-text', '-noout'], { input: made.certPem, encoding: 'utf8' })
  } catch (err) {
    t.skip(`openssl is not available: ${(err as Error).message}`)
    return
  }
  assert.match(text, /Version: 3 \(0x2\)/)
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/)
  assert.match(text, /Issuer: O ?= ?Pilot Protocol/)
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/)
  assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication/)
  assert.match(text, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/)
  assert.match(text, /NIST CURVE: P-256/)
  const fp = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], { input: made.certPem, encoding: 'utf8' })
  assert.equal(fp.split('=')[1]!.trim().replace(/:/g, '').toLowerCase(), certificatePin(made.der))
})
