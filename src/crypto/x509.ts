/**
 * The registry's self-signed TLS certificate (docs/wire.md §10.1), as the Go
 * reference makes its own: ECDSA P-256, signed with ecdsa-with-SHA256,
 * subject = issuer = O=Pilot Protocol, one year, key usage digitalSignature +
 * keyEncipherment (critical), extended key usage serverAuth, SAN localhost,
 * 127.0.0.1 and ::1, a random 128-bit serial.
 *
 * node:crypto can sign but not build certificates, so the TBSCertificate
 * (RFC 5280 §4.1) is encoded here with der.ts and signed with node:crypto.
 * The time and the serial are inputs, so tests get the same bytes twice.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { CryptoError } from '../errors.js'
import {
  derBitString,
  derBoolean,
  derExplicit,
  derIa5String,
  derImplicitPrimitive,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derSmallInteger,
  derTime,
  derUnsignedInteger,
  derUtf8String,
} from './der.js'
import { CryptoErrorCode } from './error-codes.js'

export const CERT_ORGANIZATION = 'Pilot Protocol'
export const CERT_VALIDITY_MS = 365 * 24 * 3600 * 1000

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  organization: '2.5.4.10',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const

export interface SelfSignedOptions {
  /** An EC P-256 private key; a new one when absent. */
  privateKey?: KeyObject
  /** notBefore in ms (whole seconds are kept); default now. */
  now?: number
  validityMs?: number
  /** 16 bytes; random when absent. */
  serial?: Uint8Array
  dnsNames?: readonly string[]
  /** Raw IPv4 (4 bytes) or IPv6 (16 bytes) addresses. */
  ipAddresses?: readonly Uint8Array[]
}

export interface SelfSignedCertificate {
  /** The certificate's DER bytes (what the pin hashes). */
  der: Buffer
  certPem: string
  keyPem: string
  privateKey: KeyObject
}

const LOOPBACK_V4 = Uint8Array.of(127, 0, 0, 1)
const LOOPBACK_V6 = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)

export function createSelfSignedCertificate(options: SelfSignedOptions = {}): SelfSignedCertificate {
  const privateKey = options.privateKey ?? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CryptoError(CryptoErrorCode.BAD_KEY, 'the registry certificate key must be an EC P-256 private key')
  }
  const spki = privateKeyToSpki(privateKey)
  const notBefore = Math.floor((options.now ?? Date.now()) / 1000) * 1000
  const serial = options.serial ?? randomBytes(16)
  const serialBytes = Uint8Array.from(serial)
  serialBytes[0] = serialBytes[0]! & 0x7f // positive, like Go's
  const name = derSequence(derSet(derSequence(derOid(OID.organization), derUtf8String(CERT_ORGANIZATION))))
  const algorithm = derSequence(derOid(OID.ecdsaWithSha256))
  const tbs = derSequence(
    derExplicit(0, derSmallInteger(2)), // v3
    derUnsignedInteger(serialBytes),
    algorithm,
    name,
    derSequence(derTime(notBefore), derTime(notBefore + (options.validityMs ?? CERT_VALIDITY_MS))),
    name,
    spki,
    derExplicit(3, derSequence(...extensions(options.dnsNames ?? ['localhost'], options.ipAddresses ?? [LOOPBACK_V4, LOOPBACK_V6]))),
  )
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' })
  const der = Buffer.from(derSequence(tbs, algorithm, derBitString(signature)))
  return { der, certPem: toPem('CERTIFICATE', der), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), privateKey }
}

/** The pin of a certificate (docs/wire.md §10.1): lower-case hex SHA-256 of its DER. */
export function certificatePin(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex')
}

/** PEM text of DER bytes: base64 in lines of 64. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64')
  const lines = b64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

function privateKeyToSpki(privateKey: KeyObject): Buffer {
  // The public half's SubjectPublicKeyInfo is exactly the certificate's field.
  return createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
}

function extensions(dnsNames: readonly string[], ips: readonly Uint8Array[]): Uint8Array[] {
  for (const ip of ips) {
    if (ip.length !== 4 && ip.length !== 16) throw new CryptoError(CryptoErrorCode.BAD_INPUT, `an IP address in a certificate is 4 or 16 bytes, not ${ip.length}`)
  }
  // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b101 followed by 5 unused bits.
  const keyUsage = derBitString(Uint8Array.of(0xa0), 5)
  const altNames = derSequence(...dnsNames.map((n) => derImplicitPrimitive(2, derIa5Content(n))), ...ips.map((ip) => derImplicitPrimitive(7, ip)))
  return [
    derSequence(derOid(OID.keyUsage), derBoolean(true), derOctetString(keyUsage)),
    derSequence(derOid(OID.extKeyUsage), derOctetString(derSequence(derOid(OID.serverAuth)))),
    derSequence(derOid(OID.subjectAltName), derOctetString(altNames)),
  ]
}

/** The content bytes of an IA5String (GeneralName dNSName is IMPLICIT, so the tag is replaced). */
function derIa5Content(text: string): Uint8Array {
  const full = derIa5String(text)
  return full.subarray(full.length - text.length)
}
