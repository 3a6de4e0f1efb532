/**
 * The client side of the event stream (port 1002): publish to and subscribe
 * at a remote broker. A publisher subscribes first (the first event on a
 * connection always is the subscription, §13.4) to the topic it publishes on,
 * then sends its publications, then its FIN (sent once all data is
 * acknowledged, so nothing is lost to Go's close-on-FIN).
 */
import { formatAddress } from '../protocol/address.js'
import { EventDecoder, encodeEvent } from '../protocol/event-frames.js'
import { ServiceError, ServiceErrorCode } from './errors.js'
import { EVENT_STREAM_PORT, ignoreError, type ServiceStream, type StreamOpener } from './service-stream.js'

const EMPTY = new Uint8Array(0)

/** Publishes one event on `node`'s broker. */
export async function publishRemote(opener: StreamOpener, node: number, topic: string, payload: Uint8Array): Promise<void> {
  const bytes = Buffer.concat([encodeEvent(topic, EMPTY), encodeEvent(topic, payload)])
  const stream = await opener.openStream(node, EVENT_STREAM_PORT)
  stream.on('error', ignoreError)
  stream.resume() // events for our subscription are not wanted
  await new Promise<void>((resolve, reject) => {
    stream.write(bytes, (err) => (err ? reject(err) : resolve()))
  })
  stream.end()
  closeLater(stream, 10_000)
}

export interface RemoteSubscription {
  /** Resolves when the broker ends the stream or `signal` aborts; rejects when the stream fails. */
  done: Promise<'ended' | 'aborted'>
}

/** Subscribes at `node`'s broker; every event goes to `onEvent` until `signal` aborts or the stream ends. */
export async function subscribeRemote(
  opener: StreamOpener,
  node: number,
  topic: string,
  onEvent: (topic: string, payload: Uint8Array) => void,
  signal: AbortSignal,
): Promise<RemoteSubscription> {
  const stream = await opener.openStream(node, EVENT_STREAM_PORT)
  const addr = formatAddress({ network: 0, node })
  if (signal.aborted) {
    stream.on('error', ignoreError)
    stream.destroy()
    return { done: Promise.resolve('aborted') }
  }
  const done = new Promise<'ended' | 'aborted'>((resolve, reject) => {
    const decoder = new EventDecoder()
    const finish = (): void => {
      signal.removeEventListener('abort', onAbort)
      stream.removeAllListeners('data')
      stream.on('error', ignoreError)
    }
    const onAbort = (): void => {
      finish()
      stream.end()
      closeLater(stream, 5_000)
      resolve('aborted')
    }
    signal.addEventListener('abort', onAbort, { once: true })
    stream.on('data', (chunk: Buffer) => {
      let events
      try {
        events = decoder.push(chunk)
      } catch (err) {
        finish()
        stream.destroy()
        reject(new ServiceError(ServiceErrorCode.NO_ANSWER, `${addr} sent an undecodable event: ${(err as Error).message}`))
        return
      }
      for (const e of events) {
        if (signal.aborted) return
        onEvent(e.topic, e.payload)
      }
    })
    stream.once('end', () => {
      finish()
      stream.end()
      closeLater(stream, 5_000)
      resolve('ended')
    })
    stream.once('error', (err) => {
      finish()
      reject(
        new ServiceError(ServiceErrorCode.SUBSCRIPTION_ENDED, `the subscription at ${addr} failed: ${err.message}`, {
          hint: 'the broker may have cut us off for reading too slowly, or the peer went away',
          cause: err,
        }),
      )
    })
  })
  stream.write(encodeEvent(topic, EMPTY))
  return { done }
}

function closeLater(stream: ServiceStream, ms: number): void {
  const reaper = setTimeout(() => stream.destroy(), ms)
  reaper.unref?.()
  stream.once('close', () => clearTimeout(reaper))
}
