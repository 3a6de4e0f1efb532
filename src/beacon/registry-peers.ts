/**
 * A beacon's registry round (docs/wire.md §9.7, §10.5.12), as the reference
 * does it every 30 s: one TCP connection, `beacon_register` with our ID and
 * address, then `beacon_list`, then close. Both requests are unsigned. The
 * answer is bounded (256 KiB, 1,000 beacons) and checked field by field; any
 * failure is a typed BeaconError with a hint, never a crash.
 */
import { lookup } from 'node:dns/promises'
import { createConnection, isIP } from 'node:net'
import { RegistryFrameDecoder, encodeRegistryMessage, type JsonObject } from '../protocol/registry-framing.js'
import { tryParseHostPort, type HostPort } from '../protocol/host-port.js'
import { BeaconError, BeaconErrorCode } from './errors.js'

const MAX_ANSWER = 256 * 1024
const MAX_LISTED = 1000

export interface ListedBeacon {
  readonly id: number
  /** As registered: `host:port`; the host may be empty or unspecified (a beacon that listens on all interfaces). */
  readonly addr: string
}

/** Registers `beaconId` at `addr` and returns the registry's beacon list. */
export async function registerAndList(registry: HostPort, beaconId: number, addr: string, timeoutMs = 5000): Promise<ListedBeacon[]> {
  const host = isIP(registry.host) !== 0 ? registry.host : (await lookupOrThrow(registry.host))
  const answers = await exchange({ host, port: registry.port }, [
    { type: 'beacon_register', beacon_id: beaconId, addr },
    { type: 'beacon_list' },
  ], timeoutMs)
  const reg = answers[0]!
  if (reg.type !== 'beacon_register_ok') throw refused('beacon_register', reg)
  const list = answers[1]!
  if (list.type !== 'beacon_list_ok' || !Array.isArray(list.beacons)) throw refused('beacon_list', list)
  const out: ListedBeacon[] = []
  for (const b of list.beacons.slice(0, MAX_LISTED) as unknown[]) {
    if (typeof b !== 'object' || b === null) continue
    const { id, addr: a } = b as { id?: unknown; addr?: unknown }
    if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0 || id > 0xffffffff || typeof a !== 'string' || a.length > 262) continue
    out.push({ id, addr: a })
  }
  return out
}

/**
 * Where to send to a listed beacon: its `host:port`, with an empty or unspecified host
 * taken as the registry's host (a beacon registers its listen address as given, and one
 * listening on every interface says `:9001` or `0.0.0.0:9001`). Null when unusable.
 */
export async function listedEndpoint(addr: string, registryHost: string): Promise<HostPort | null> {
  const hp = tryParseHostPort(addr, { hosts: 'name', listen: true })
  if (hp === null || hp.port === 0) return null
  const host = hp.host === '0.0.0.0' || hp.host === '::' || hp.host === '' ? registryHost : hp.host
  if (isIP(host) !== 0) return { host, port: hp.port }
  try {
    return { host: await lookupOrThrow(host), port: hp.port }
  } catch {
    return null
  }
}

async function lookupOrThrow(host: string): Promise<string> {
  try {
    return (await lookup(host, { family: 4 }).catch(() => lookup(host))).address
  } catch (err) {
    throw new BeaconError(BeaconErrorCode.REGISTRY_FAILED, `cannot resolve ${host}: ${(err as Error).message}`, { hint: 'check --registry / --peers' })
  }
}

function refused(what: string, answer: JsonObject): BeaconError {
  const why = typeof answer.error === 'string' ? answer.error.slice(0, 200) : `unexpected answer type ${String(answer.type).slice(0, 40)}`
  return new BeaconError(BeaconErrorCode.REGISTRY_FAILED, `the registry refused ${what}: ${why}`, { hint: 'is --beacon-id non-zero and --advertise a HOST:PORT?' })
}

/** Sends `requests` in lock-step on one connection and returns the answers. */
function exchange(target: HostPort, requests: JsonObject[], timeoutMs: number): Promise<JsonObject[]> {
  return new Promise((resolve, reject) => {
    const answers: JsonObject[] = []
    const decoder = new RegistryFrameDecoder(MAX_ANSWER)
    const socket = createConnection({ host: target.host, port: target.port })
    let done = false
    const finish = (err: Error | null): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      if (err === null) resolve(answers)
      else reject(err)
    }
    const fail = (message: string, cause?: unknown): void =>
      finish(new BeaconError(BeaconErrorCode.REGISTRY_FAILED, message, { hint: 'check that --registry names a running registry', cause }))
    const timer = setTimeout(() => fail(`no answer from the registry at ${target.host}:${target.port} within ${timeoutMs} ms`), timeoutMs)
    socket.once('connect', () => socket.write(encodeRegistryMessage(requests[0]!)))
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const m of decoder.pushAndDrain(chunk)) {
          answers.push(m)
          if (answers.length === requests.length) return finish(null)
          socket.write(encodeRegistryMessage(requests[answers.length]!))
        }
      } catch (err) {
        fail(`the registry answered something that is not a registry message: ${(err as Error).message}`, err)
      }
    })
    socket.once('error', (err) => fail(`registry ${target.host}:${target.port}: ${err.message}`, err))
    socket.once('close', () => fail('the registry closed the connection before answering'))
  })
}
