/**
 * Registry latency for netcheck: one TCP connection, timed to `connect`,
 * then one unsigned request (`beacon_list`, docs/wire.md §10.5.12, answered
 * by every registry and changing nothing) timed to its answer. Any framed
 * JSON answer counts, an error object too: the round trip is what is
 * measured. Never throws; a failure is reported with a registry error code.
 */
import { lookup } from 'node:dns/promises'
import { isIP, createConnection, type Socket } from 'node:net'
import { RegistryErrorCode } from '../registry/errors.js'
import { RegistryFrameDecoder, encodeRegistryMessage } from '../protocol/registry-framing.js'
import type { HostPort } from '../protocol/host-port.js'

export interface RegistryProbeResult {
  /** TCP connect time (after name resolution), ms; null if no connection was made. */
  readonly connectMs: number | null
  /** Request written → answer complete, ms; null without an answer. */
  readonly rttMs: number | null
  readonly error: { readonly code: string; readonly message: string } | null
}

const REQUEST = encodeRegistryMessage({ type: 'beacon_list' })
/** Enough for any beacon list; a registry that sends more is not one. */
const MAX_ANSWER = 256 * 1024

export async function probeRegistry(target: HostPort, timeoutMs: number, now: () => number = () => performance.now()): Promise<RegistryProbeResult> {
  const started = now()
  let ip: string
  try {
    ip = isIP(target.host) !== 0 ? target.host : (await lookup(target.host)).address
  } catch (err) {
    return failed(null, RegistryErrorCode.UNREACHABLE, `cannot resolve ${target.host}: ${(err as Error).message}`)
  }
  const left = timeoutMs - (now() - started)
  return new Promise((resolve) => {
    let connectMs: number | null = null
    let sentAt = -1
    const decoder = new RegistryFrameDecoder(MAX_ANSWER)
    const socket: Socket = createConnection({ host: ip, port: target.port })
    const finish = (r: RegistryProbeResult): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(r)
    }
    const timer = setTimeout(
      () => finish(failed(connectMs, RegistryErrorCode.TIMEOUT, connectMs === null ? `no TCP connection within ${timeoutMs} ms` : `no answer within ${timeoutMs} ms`)),
      Math.max(0, left),
    )
    socket.once('connect', () => {
      connectMs = now() - started
      sentAt = now()
      socket.write(REQUEST)
    })
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk)
        if (decoder.next() !== null) finish({ connectMs, rttMs: now() - sentAt, error: null })
      } catch (err) {
        finish(failed(connectMs, RegistryErrorCode.BAD_RESPONSE, `the registry answered something that is not a registry message: ${(err as Error).message}`))
      }
    })
    socket.once('error', (err: NodeJS.ErrnoException) => finish(failed(connectMs, RegistryErrorCode.UNREACHABLE, err.message)))
    socket.once('close', () => finish(failed(connectMs, RegistryErrorCode.CLOSED, 'the registry closed the connection before answering')))
  })
}

function failed(connectMs: number | null, code: string, message: string): RegistryProbeResult {
  return { connectMs, rttMs: null, error: { code, message } }
}
