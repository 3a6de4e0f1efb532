/**
 * The daemon's trust policy, as the session driver asks it about each stream
 * SYN, datagram and control ping (the driver only reports; this decides).
 * Private by default: only nodes with mutual trust get through, except stream
 * SYNs to the trust port 444 (how trust is asked for) and to ports opened to
 * everyone. Pings from untrusted nodes go unanswered unless `answerPings`
 * (`up --answer-pings`) is set.
 */
import type { AdmitPolicy } from './session-driver.js'
import { TRUST_PORT } from './trust-service.js'

export interface TrustLookup {
  isTrusted(node: number): boolean
}

export interface TrustAdmissionOptions {
  /** Answer control pings (port 0) from every node, not only trusted ones. Default false. */
  answerPings?: boolean
}

export class TrustAdmission {
  private readonly trust: TrustLookup
  /** Stream ports open to untrusted nodes too (`listenStreams(…, { allowUntrusted: true })`). */
  private readonly openPorts = new Set<number>()
  readonly answerPings: boolean

  /** The policy to give the session driver (bound once). */
  readonly admit: AdmitPolicy = (node, port, protocol) => {
    if (protocol === 'stream' && (port === TRUST_PORT || this.openPorts.has(port))) return true
    if (protocol === 'ping' && this.answerPings) return true
    return this.trust.isTrusted(node)
  }

  constructor(trust: TrustLookup, options: TrustAdmissionOptions = {}) {
    this.trust = trust
    this.answerPings = options.answerPings === true
  }

  /** Mutual trust with `node`. */
  isTrusted(node: number): boolean {
    return this.trust.isTrusted(node)
  }

  /** Stream SYNs to `port` are admitted from every node. */
  openToAll(port: number): void {
    this.openPorts.add(port)
  }

  /** `port` is back to trusted nodes only. */
  closeToAll(port: number): void {
    this.openPorts.delete(port)
  }
}
