/**
 * The few DER (X.690) encodings a self-signed X.509 certificate needs
 * (x509.ts): definite lengths, INTEGER, OBJECT IDENTIFIER, strings, times,
 * BIT/OCTET STRING and constructed values. Encoding only; node:crypto's
 * X509Certificate reads certificates back. Pure: bytes in, bytes out.
 */
import { CryptoError } from '../errors.js'
import { CryptoErrorCode } from './error-codes.js'

export const DerTag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const

/** Tag ‖ definite length ‖ content. */
export function derTlv(tag: number, content: Uint8Array): Uint8Array {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff) throw badInput(`DER tag ${tag} is not one byte`)
  return Buffer.concat([Uint8Array.of(tag), derLength(content.length), content])
}

/** Short form below 128, else 0x80|n followed by n big-endian bytes. */
export function derLength(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) throw badInput(`DER length ${length} is invalid`)
  if (length < 0x80) return Uint8Array.of(length)
  const bytes: number[] = []
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256)
  return Uint8Array.from([0x80 | bytes.length, ...bytes])
}

export function derSequence(...items: Uint8Array[]): Uint8Array {
  return derTlv(DerTag.SEQUENCE, Buffer.concat(items))
}

export function derSet(...items: Uint8Array[]): Uint8Array {
  return derTlv(DerTag.SET, Buffer.concat(items))
}

/** `[n] EXPLICIT`: a constructed context-specific tag around one encoded value. */
export function derExplicit(n: number, inner: Uint8Array): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw badInput(`context tag [${n}] is out of range`)
  return derTlv(0xa0 | n, inner)
}

/** `[n] IMPLICIT` of a primitive value (as GeneralName's dNSName [2] and iPAddress [7]). */
export function derImplicitPrimitive(n: number, content: Uint8Array): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw badInput(`context tag [${n}] is out of range`)
  return derTlv(0x80 | n, content)
}

export function derBoolean(value: boolean): Uint8Array {
  return derTlv(DerTag.BOOLEAN, Uint8Array.of(value ? 0xff : 0x00))
}

/** A non-negative INTEGER from a small number. */
export function derSmallInteger(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw badInput(`INTEGER ${value} is not a non-negative safe integer`)
  const bytes: number[] = []
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256)
  return derUnsignedInteger(Uint8Array.from(bytes))
}

/**
 * A non-negative INTEGER from big-endian magnitude bytes: leading zeros are
 * dropped (minimal encoding) and a 0x00 is put in front when the top bit is set.
 */
export function derUnsignedInteger(magnitude: Uint8Array): Uint8Array {
  let start = 0
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++
  const body = magnitude.length === 0 ? Uint8Array.of(0) : magnitude.subarray(start)
  const content = (body[0]! & 0x80) !== 0 ? Buffer.concat([Uint8Array.of(0), body]) : body
  return derTlv(DerTag.INTEGER, content)
}

/** OBJECT IDENTIFIER from dotted text ("1.2.840.10045.4.3.2"). */
export function derOid(dotted: string): Uint8Array {
  if (!/^[0-2](\.(0|[1-9][0-9]*))+$/.test(dotted)) throw badInput(`"${dotted}" is not a dotted OID`)
  const arcs = dotted.split('.').map(Number)
  if (arcs.some((a) => !Number.isSafeInteger(a))) throw badInput(`OID ${dotted} has an arc too large`)
  const [first, second, ...rest] = arcs as [number, number, ...number[]]
  if (first < 2 && second > 39) throw badInput(`OID ${dotted}: the second arc must be below 40`)
  const out: number[] = []
  for (const arc of [first * 40 + second, ...rest]) {
    const septets: number[] = [arc % 128]
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) septets.unshift((n % 128) | 0x80)
    out.push(...septets)
  }
  return derTlv(DerTag.OID, Uint8Array.from(out))
}

export function derUtf8String(text: string): Uint8Array {
  return derTlv(DerTag.UTF8_STRING, Buffer.from(text, 'utf8'))
}

/** PrintableString: A-Z a-z 0-9 space ' ( ) + , - . / : = ? only. */
export function derPrintableString(text: string): Uint8Array {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) throw badInput(`"${text}" is not a PrintableString`)
  return derTlv(DerTag.PRINTABLE_STRING, Buffer.from(text, 'latin1'))
}

export function derIa5String(text: string): Uint8Array {
  if (!/^[\x00-\x7f]*$/.test(text)) throw badInput('IA5String holds ASCII only')
  return derTlv(DerTag.IA5_STRING, Buffer.from(text, 'latin1'))
}

export function derOctetString(content: Uint8Array): Uint8Array {
  return derTlv(DerTag.OCTET_STRING, content)
}

/** BIT STRING with `unusedBits` (0..7) padding bits in the last byte. */
export function derBitString(content: Uint8Array, unusedBits = 0): Uint8Array {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (unusedBits > 0 && content.length === 0)) {
    throw badInput(`BIT STRING with ${unusedBits} unused bits is invalid`)
  }
  return derTlv(DerTag.BIT_STRING, Buffer.concat([Uint8Array.of(unusedBits), content]))
}

/**
 * An X.509 Time (RFC 5280 §4.1.2.5): UTCTime `YYMMDDHHMMSSZ` for the years
 * 1950-2049, GeneralizedTime `YYYYMMDDHHMMSSZ` otherwise. Whole seconds, UTC.
 */
export function derTime(ms: number): Uint8Array {
  const d = new Date(ms)
  const year = d.getUTCFullYear()
  if (!Number.isFinite(ms) || year < 0 || year > 9999) throw badInput(`time ${ms} cannot be encoded`)
  const two = (n: number): string => String(n).padStart(2, '0')
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`
  if (year >= 1950 && year < 2050) return derTlv(DerTag.UTC_TIME, Buffer.from(`${two(year % 100)}${rest}`, 'latin1'))
  return derTlv(DerTag.GENERALIZED_TIME, Buffer.from(`${String(year).padStart(4, '0')}${rest}`, 'latin1'))
}

function badInput(message: string): CryptoError {
  return new CryptoError(CryptoErrorCode.BAD_INPUT, message)
}
