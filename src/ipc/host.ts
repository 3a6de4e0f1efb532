/**
 * What the driver IPC server (server.ts) needs from a running node. The
 * daemon side builds one (src/daemon/ipc-host.ts); tests may hand in fakes.
 * Nothing here imports the daemon: the dependency runs daemon → ipc only.
 */
import type { Duplex } from 'node:stream'
import type { PilotAddress } from '../protocol/address.js'
import type { IpcHandshake } from '../protocol/ipc-frames.js'

/** A connected Pilot stream (the daemon's `PilotStream`). */
export interface IpcStream extends Duplex {
  readonly remoteAddress: PilotAddress
  readonly remotePort: number
  readonly localPort: number
}

export interface IpcDatagram {
  from: PilotAddress
  fromPort: number
  toPort: number
  data: Uint8Array
}

/** JSON answer objects, sent as they are. */
export type IpcJson = Record<string, unknown>

export interface IpcHost {
  /** Connects a stream; rejects with a typed error (its message goes into the Error frame). */
  openStream(addr: PilotAddress, port: number): Promise<IpcStream>
  /** Accepts streams on `port` (trust policy applies); throws when the port is taken. */
  listen(port: number, onStream: (stream: IpcStream) => void): void
  unlisten(port: number): void
  /** Sends one datagram; throws on a closed daemon. */
  sendDatagram(addr: PilotAddress, port: number, data: Uint8Array): void
  /** Adds a datagram receiver next to any other; returns its removal. */
  addDatagramListener(fn: (d: IpcDatagram) => void): () => void
  /** The reference's InfoOK object; `connId` names the IPC connection a stream belongs to, if any. */
  info(connId: (stream: object) => number | undefined): Promise<IpcJson>
  /** Handshake sub-commands → the reference's HandshakeOK objects. */
  handshake(h: IpcHandshake): Promise<IpcJson>
  resolveHostname(hostname: string): Promise<IpcJson>
  setHostname(hostname: string): Promise<IpcJson>
  setVisibility(isPublic: boolean): Promise<IpcJson>
  setTags(tags: string[]): Promise<IpcJson>
  setTaskExec(enabled: boolean): Promise<IpcJson>
  deregister(): Promise<IpcJson>
}
