// A tiny test-only driver for the IPC socket: sends messages, collects the
// daemon's, waits for the one a test expects.
import { createConnection, type Socket } from 'node:net'
import { IpcFrameDecoder, decodeIpcMessage, encodeIpcMessage, IpcCommand, type IpcMessage } from '../../src/protocol/ipc-frames.js'

export class TestIpcClient {
  readonly received: IpcMessage[] = []
  closed = false
  private readonly decoder = new IpcFrameDecoder()
  private waiters: Array<() => void> = []

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const raw of this.decoder.push(chunk)) this.received.push(decodeIpcMessage(raw))
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    socket.on('error', () => {})
  }

  static connect(path: string): Promise<TestIpcClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ path })
      s.once('connect', () => resolve(new TestIpcClient(s)))
      s.once('error', reject)
    })
  }

  send(m: IpcMessage): void {
    this.socket.write(encodeIpcMessage(m))
  }

  raw(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  /** Removes and returns the first message matching `match` (waiting up to `timeoutMs`). */
  async next<T extends IpcMessage = IpcMessage>(match: (m: IpcMessage) => boolean, what: string, timeoutMs = 8_000): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.received.findIndex(match)
      if (i >= 0) return this.received.splice(i, 1)[0] as T
      const left = deadline - Date.now()
      if (left <= 0 || this.closed) {
        throw new Error(`no ${what} (closed ${this.closed}); got ${this.received.map((m) => IpcCommand[m.cmd]).join(', ')}`)
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }

  cmd<T extends IpcMessage = IpcMessage>(cmd: IpcCommand, timeoutMs?: number): Promise<T> {
    return this.next<T>((m) => m.cmd === cmd || m.cmd === IpcCommand.Error, IpcCommand[cmd], timeoutMs)
  }

  /** A JSON answer, parsed; fails on an Error frame. */
  async json(cmd: IpcCommand): Promise<Record<string, unknown>> {
    const m = await this.cmd(cmd)
    if (m.cmd === IpcCommand.Error) throw new Error(`Error frame: ${m.message}`)
    return JSON.parse((m as { text: string }).text) as Record<string, unknown>
  }

  /** All Recv bytes of `connId` until `bytes` arrived. */
  async recvBytes(connId: number, bytes: number, timeoutMs = 15_000): Promise<Buffer> {
    const chunks: Buffer[] = []
    let got = 0
    while (got < bytes) {
      const m = await this.next((x) => x.cmd === IpcCommand.Recv && x.connId === connId, `Recv on ${connId} (${got}/${bytes})`, timeoutMs)
      const data = Buffer.from((m as { data: Uint8Array }).data)
      chunks.push(data)
      got += data.length
    }
    return Buffer.concat(chunks)
  }

  close(): void {
    this.socket.destroy()
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }
}
