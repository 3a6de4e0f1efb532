// In-memory equipment for task service tests: a network of TaskServices whose
// streams are linked Duplex pairs, a fake polo registry, a settable clock.
import { Duplex } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TaskService, type TaskServiceDeps, type TaskStream } from '../../../src/services/tasks/task-service.js'
import { TaskStore, type TaskStoreLimits } from '../../../src/services/tasks/task-store.js'
import { PilotError } from '../../../src/errors.js'

class End extends Duplex implements TaskStream {
  peer!: End
  constructor(readonly remoteAddress: { network: number; node: number }) {
    super({ allowHalfOpen: true })
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.peer.push(chunk)
    cb()
  }
  override _final(cb: (e?: Error | null) => void): void {
    this.peer.push(null)
    cb()
  }
  override _read(): void {}
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // A reset (destroy before our side finished) reaches the other end as an error, as a Pilot stream's RST does.
    if (!this.peer.destroyed && (err !== null || !this.writableFinished)) this.peer.destroy(new Error('reset by peer'))
    cb(err)
  }
}

export class FakePolo {
  scores = new Map<number, number>()
  failing = false
  calls: string[] = []
  async getPoloScore(node: number): Promise<{ poloScore: number }> {
    this.calls.push(`get ${node}`)
    if (this.failing) throw new PilotError('PT_REGISTRY_UNREACHABLE', 'registry down')
    return { poloScore: this.scores.get(node) ?? 0 }
  }
  async updatePoloScore(node: number, delta: number): Promise<{ poloScore: number }> {
    this.calls.push(`update ${node} ${delta}`)
    const v = (this.scores.get(node) ?? 0) + delta
    this.scores.set(node, v)
    return { poloScore: v }
  }
}

export class TaskNet {
  readonly services = new Map<number, TaskService>()
  private readonly listeners = new Map<number, (s: TaskStream) => void>()
  /** Nodes whose port 1003 refuses (like an untrusted or tasks-off peer). */
  readonly refusing = new Set<number>()
  readonly polo = new FakePolo()
  clock = 1_796_000_000_000
  readonly now = (): number => this.clock
  private dirs: string[] = []

  async node(id: number, extra: Partial<TaskServiceDeps> & { limits?: Partial<TaskStoreLimits> } = {}): Promise<TaskService> {
    const dir = await mkdtemp(join(tmpdir(), 'pt-tasks-'))
    this.dirs.push(dir)
    const store = await TaskStore.open(join(dir, 'tasks'), extra.limits)
    let n = 0
    const svc = new TaskService({
      selfId: id,
      store,
      openStream: async (node) => {
        const l = this.listeners.get(node)
        if (l === undefined || this.refusing.has(node)) throw new PilotError('PT_CONNECTION_REFUSED', `node ${node} refused port 1003`)
        const a = new End({ network: 0, node })
        const b = new End({ network: 0, node: id })
        a.peer = b
        b.peer = a
        l(b)
        return a
      },
      listenStreams: (_port, fn) => this.listeners.set(id, fn),
      unlistenStreams: () => this.listeners.delete(id),
      registry: this.polo,
      resolveTarget: async (t) => ({ node: Number(t.replace(/^node/, '')) }),
      randomBytes: (k) => Buffer.alloc(k, ++n + id * 16),
      now: this.now,
      tickMs: 0,
      answerTimeoutMs: 2000,
      readTimeoutMs: 2000,
      ...extra,
    })
    this.services.set(id, svc)
    return svc
  }

  /** A raw stream from node `from` to `to`'s port 1003 (the caller writes bytes by hand). */
  rawStream(from: number, to: number): Duplex {
    const a = new End({ network: 0, node: to })
    const b = new End({ network: 0, node: from })
    a.peer = b
    b.peer = a
    this.listeners.get(to)!(b)
    return a
  }

  storeDir(i: number): string {
    return join(this.dirs[i]!, 'tasks')
  }

  async close(): Promise<void> {
    for (const s of this.services.values()) s.close()
    await new Promise((r) => setTimeout(r, 10))
    for (const d of this.dirs) await rm(d, { recursive: true, force: true })
  }
}

export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
  return 'resolved'
}
