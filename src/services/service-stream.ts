/**
 * What the services need of a stream and of the node: a Node `Duplex` that
 * knows its remote address (the daemon's `PilotStream` is one), a way to open
 * one, and a way to accept them. Narrow on purpose: services do not import the
 * daemon, the daemon wires them (tests hand in pairs of in-memory streams).
 */
import type { Duplex } from 'node:stream'
import type { PilotAddress } from '../protocol/address.js'

export type ServiceStream = Duplex & { readonly remoteAddress: PilotAddress }

export interface StreamOpener {
  /** Resolves once connected; rejects with the daemon's typed dial errors. */
  openStream(node: number, port: number): Promise<ServiceStream>
}

export interface StreamAcceptor {
  /** Accepts streams on `port` (trusted nodes only: the daemon's default). */
  listenStreams(port: number, onStream: (stream: ServiceStream) => void): void
  unlistenStreams(port: number): void
}

export const DATA_EXCHANGE_PORT = 1001
export const EVENT_STREAM_PORT = 1002

export function ignoreError(): void {}
