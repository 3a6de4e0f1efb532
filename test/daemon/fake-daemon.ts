// An in-memory DaemonControl for control-socket and CLI tests: canned answers, recorded calls.
import { PilotError } from '../../src/errors.js'
import type { DaemonControl, DaemonStatus, PeerStatus, TrustList } from '../../src/daemon/api.js'
import type { TaskCommand, TaskResults } from '../../src/services/tasks/task-api.js'

/** Targets the fake never answers pings for, and one whose ping throws a plain Error. */
const NOBODY = '0:0000.0000.00FF'
const BOOM = '0:0000.0000.00EE'

export const STATUS: DaemonStatus = {
  version: '0.1.0',
  node_id: 42,
  address: '0:0000.0000.002A',
  ipv6: 'fd50:494c:4f54::2a',
  hostname: 'alice',
  public: false,
  uptime_s: 12,
  listen: '0.0.0.0:4000',
  public_endpoint: '203.0.113.7:4000',
  registry: { address: '127.0.0.1:9000', front_end: '127.0.0.1:9000', connected: true, last_heartbeat_s_ago: 3 },
  beacon: { address: '127.0.0.1:9001' },
  kdf: 'auto',
  auto_accept: false,
  peers: 1,
  connections: 0,
  trust_unsaved: null,
  tun: null,
}

export const PEER: PeerStatus = {
  node_id: 43,
  address: '0:0000.0000.002B',
  hostname: 'bob',
  path: 'direct',
  endpoint: '198.51.100.2:4000',
  rtt_ms: 1.25,
  kdf: 'hkdf',
  kdf_confirmed: true,
  authenticated: true,
  trusted: true,
  bytes_in: 1234,
  bytes_out: 5678,
  last_seen_s_ago: 1,
}

export const TRUST: TrustList = {
  trusted: [{ node_id: 43, address: '0:0000.0000.002B', approved_at: '2026-01-01T00:00:00Z', mutual: true }],
  pending: [{ node_id: 44, address: '0:0000.0000.002C', justification: 'hi', received_at: '2026-01-01T00:00:00Z' }],
  outgoing: [],
}

/** Records calls; behaviour per method can be swapped by tests. */
export class FakeDaemon implements DaemonControl {
  calls: Array<[string, ...unknown[]]> = []
  pingDelayMs = 0
  shutdownCalled = false
  onShutdown: () => void = () => {}
  async status() { this.calls.push(['status']); return STATUS }
  async peers() { this.calls.push(['peers']); return [PEER] }
  async ping(target: string, timeoutMs: number) {
    this.calls.push(['ping', target, timeoutMs])
    if (target === 'nobody' || target === NOBODY) throw new PilotError('PT_PING_TIMEOUT', 'no echo reply from nobody', { hint: 'is it up?' })
    if (target === 'boom' || target === BOOM) throw new Error('kaboom')
    if (this.pingDelayMs > 0) await new Promise((r) => setTimeout(r, this.pingDelayMs))
    return { address: PEER.address, hostname: target, rtt_ms: 0.5, path: 'direct' as const }
  }
  async resolve(target: string) {
    this.calls.push(['resolve', target])
    if (target === 'nobody') return { address: NOBODY, node_id: 0xff, ipv6: 'fd50:494c:4f54::ff', hostname: target }
    if (target === 'boom') return { address: BOOM, node_id: 0xee, ipv6: 'fd50:494c:4f54::ee', hostname: target }
    return { address: PEER.address, node_id: 43, ipv6: 'fd50:494c:4f54::2b', hostname: target }
  }
  async trustRequest(target: string, reason: string) { this.calls.push(['trustRequest', target, reason]); return { status: 'sent' as const, node_id: 43 } }
  async trustApprove(target: string) { this.calls.push(['trustApprove', target]); return { status: 'approved' as const, node_id: 43 } }
  async trustReject(target: string, reason: string) { this.calls.push(['trustReject', target, reason]); return { status: 'rejected' as const, node_id: 43 } }
  async trustRevoke(target: string) { this.calls.push(['trustRevoke', target]); return { status: 'revoked' as const, node_id: 43 } }
  async trustList() { this.calls.push(['trustList']); return TRUST }
  async setHostname(name: string) { this.calls.push(['setHostname', name]); return { hostname: name } }
  /** Task commands: recorded; answered from `taskAnswers` (or a PT_TASK_NOT_FOUND error). */
  taskAnswers: Partial<{ [K in keyof TaskResults]: TaskResults[K] }> = {}
  async task<C extends TaskCommand>(command: C): Promise<TaskResults[C['op']]> {
    this.calls.push(['task', command])
    const answer = this.taskAnswers[command.op]
    if (answer === undefined) throw new PilotError('PT_TASK_NOT_FOUND', 'task not found: x', { hint: 'see `pilot-tun task list`' })
    return answer as TaskResults[C['op']]
  }
  async shutdown() { this.calls.push(['shutdown']); this.shutdownCalled = true; this.onShutdown() }
}

