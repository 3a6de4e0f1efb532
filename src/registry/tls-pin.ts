/**
 * The client side of registry TLS (docs/wire.md §10.1, issue 15): the daemon's
 * `--registry-tls --registry-fingerprint HEX` and the pinned dial.
 *
 * As in the Go reference: TLS only with a pin; the pin is the lower-case hex
 * SHA-256 of the DER of the first certificate the registry presents, compared
 * exactly (the reference does not fold case or strip colons either: it refused
 * an upper-case and a colon-separated copy of the right pin); no CA, hostname
 * or expiry check. We refuse a pin that cannot ever match (not 64 lower-case
 * hex digits) when the options are read, instead of at every dial.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { isIP } from 'node:net'
import { certificatePin } from '../crypto/x509.js'
import { ConfigError } from '../errors.js'
import { RegistryError, RegistryErrorCode } from './errors.js'

export interface RegistryTlsPin {
  /** 64 lower-case hex digits. */
  pin: string
}

const PIN_PATTERN = /^[0-9a-f]{64}$/

/** `--registry-tls` and `--registry-fingerprint` as one setting: null = plaintext TCP. PT_CONFIG_INVALID when they do not fit. */
export function registryTlsOption(tls: boolean | undefined, fingerprint: string | undefined): RegistryTlsPin | null {
  const pinGiven = fingerprint !== undefined && fingerprint !== ''
  if (tls !== true) {
    if (pinGiven) throw new ConfigError('--registry-fingerprint is set but --registry-tls is not', 'add --registry-tls (or "registry-tls": true) to talk TLS to the registry')
    return null
  }
  if (!pinGiven) {
    throw new ConfigError(
      '--registry-tls needs --registry-fingerprint: TLS without a pinned certificate is refused',
      'ask the registry\'s operator for its pin (`pilot-tun registry` prints it at start), then pass --registry-fingerprint <64 hex digits>',
    )
  }
  if (!PIN_PATTERN.test(fingerprint)) {
    const folded = fingerprint.toLowerCase().replace(/:/g, '')
    throw new ConfigError(
      `--registry-fingerprint ${JSON.stringify(fingerprint.slice(0, 100))} is not a pin: want 64 lower-case hex digits (the SHA-256 of the certificate)`,
      PIN_PATTERN.test(folded) ? `pins are compared exactly, as the reference does: write ${folded}` : 'the registry prints its pin at start',
    )
  }
  return { pin: fingerprint }
}

/**
 * Dials `host:port` with TLS and checks the pin. Resolves with the socket once
 * the handshake is done and the pin matches; a mismatch rejects with
 * PT_REGISTRY_TLS_PIN (not a connection failure: a redial would meet the same
 * certificate). Other failures reject with `lost(message)`.
 */
export function dialPinned(host: string, port: number, tls: RegistryTlsPin, timeoutMs: number, lost: (message: string) => Error): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port,
      // The pin is the only check (see the file comment).
      rejectUnauthorized: false,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      minVersion: 'TLSv1.2',
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(lost(`no TLS connection within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('secureConnect', () => {
      clearTimeout(timer)
      socket.removeAllListeners('error')
      socket.on('error', () => {}) // the owner adds its own; until then nothing may crash
      const raw = socket.getPeerCertificate(false)?.raw
      const presented = raw === undefined ? null : certificatePin(raw)
      if (presented !== tls.pin) {
        socket.destroy()
        reject(pinMismatch(host, port, tls.pin, presented))
        return
      }
      resolve(socket)
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      socket.destroy()
      reject(lost(`TLS: ${err.message}`))
    })
  })
}

function pinMismatch(host: string, port: number, expected: string, presented: string | null): RegistryError {
  const where = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
  if (presented === null) {
    return new RegistryError(RegistryErrorCode.TLS_PIN, `registry ${where} presented no TLS certificate; expected pin ${expected}`, {
      hint: 'this is not a registry with TLS; check --registry',
    })
  }
  return new RegistryError(RegistryErrorCode.TLS_PIN, `registry ${where} presented a TLS certificate with pin ${presented}, not the configured ${expected}`, {
    hint: `the registry presented pin ${presented}. If its certificate was replaced on purpose, set --registry-fingerprint ${presented}; if not, something between this node and the registry is intercepting the connection`,
  })
}
