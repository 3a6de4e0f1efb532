/**
 * The daemon's network and audit commands (issue 13): what the control
 * socket's `network.*` and `audit.*` methods (control/network-methods.ts) do.
 * Network arguments are an ID or a name (names through `list_networks`),
 * node arguments anything the daemon's resolver takes (hostname, address,
 * node ID). Results are plain snake_case JSON; registry errors pass through
 * with their code and hint.
 *
 * join, leave and create return only after the `NetworkView` refreshed, so
 * pilot0 has (or lost) the network's address when the CLI returns.
 */
import { PilotError } from '../errors.js'
import { auditEntryToWire } from '../registry/network-wire.js'
import {
  BACKBONE_NETWORK,
  MAX_NETWORK_ID,
  type AuditEntry,
  type AuditVerification,
  type JoinRule,
  type NetworkInfo,
  type NetworkNode,
  type NetworkPolicy,
  type NetworkRole,
  type NetworkSummary,
  type SignedInvite,
} from '../registry/network-types.js'
import type { NetworkView } from './network-view.js'
import type { TrustLog, TrustLogEntry } from './trust-log.js'

/**
 * The RegistryClient's network methods (the contract's signatures). The real
 * RegistryClient implements them; tests give a fake.
 */
export interface NetworkRegistry {
  createNetwork(nodeId: number, o: { name: string; joinRule: JoinRule; token?: string; policy?: Partial<NetworkPolicy> }): Promise<{ networkId: number; name: string }>
  joinNetwork(nodeId: number, networkId: number, o?: { token?: string; invite?: SignedInvite }): Promise<{ networkId: number; address: string }>
  leaveNetwork(nodeId: number, networkId: number): Promise<{ networkId: number }>
  createInvite(nodeId: number, networkId: number, inviteeId: number, ttlSeconds: number): Promise<SignedInvite>
  removeMember(nodeId: number, networkId: number, memberId: number): Promise<void>
  setMemberRole(nodeId: number, networkId: number, memberId: number, role: NetworkRole): Promise<void>
  setNetworkPolicy(nodeId: number, networkId: number, policy: Partial<NetworkPolicy>): Promise<NetworkPolicy>
  networkInfo(nodeId: number, networkId: number): Promise<NetworkInfo>
  listNetworks(): Promise<NetworkSummary[]>
  listNodes(nodeId: number, networkId: number): Promise<NetworkNode[]>
  auditLog(nodeId: number, networkId: number, o?: { adminToken?: string }): Promise<AuditEntry[]>
}

export interface NetworkOpsOptions {
  registry: NetworkRegistry
  view: Pick<NetworkView, 'refresh' | 'get'>
  selfId: number
  /** hostname | address | node ID → node ID (PT_NAME_NOT_FOUND otherwise). */
  resolveNode: (target: string) => Promise<number>
  verify: (entries: AuditEntry[]) => AuditVerification
  inviteText: { encode(i: SignedInvite): string; decode(text: string): SignedInvite }
  /** The local trust-decision log; null = none. */
  trustLog: Pick<TrustLog, 'entries' | 'verify'> | null
}

export interface PolicyJson {
  max_members: number
  allowed_ports: number[]
  members_resolve: boolean
}

/** An audit entry as the CLI prints it with --json: the registry's wire form. */
export type AuditEntryJson = ReturnType<typeof auditEntryToWire>

export type VerifyJson =
  | { ok: true; network_id: number | null; local: boolean; entries: number; head: string }
  | { ok: false; network_id: number | null; local: boolean; entries: number; first_broken: number; reason: string }

/** Default invite lifetime (`network invite` without --ttl): 24 h. */
export const DEFAULT_INVITE_TTL_S = 86_400
export const MAX_INVITE_TTL_S = 30 * 86_400

export function policyJson(p: NetworkPolicy): PolicyJson {
  return { max_members: p.maxMembers, allowed_ports: [...p.allowedPorts], members_resolve: p.membersResolve }
}

/** An audit entry in the CLI's --json form (the registry's wire form). */
export const auditEntryJson: (e: AuditEntry) => AuditEntryJson = auditEntryToWire


function notFound(text: string): PilotError {
  return new PilotError('PT_NETWORK_NOT_FOUND', `no network "${text}"`, { hint: 'see `pilot-tun network list`' })
}

export class NetworkOps {
  private readonly o: NetworkOpsOptions

  constructor(o: NetworkOpsOptions) {
    this.o = o
  }

  /** A network ID (decimal) or name → its ID. Network 0 is refused: it is the backbone, not a network one manages. */
  async networkId(text: string): Promise<number> {
    const t = text.trim().toLowerCase()
    if (/^\d+$/.test(t)) {
      const id = Number(t)
      if (id === BACKBONE_NETWORK || id > MAX_NETWORK_ID) throw notFound(text)
      return id
    }
    const hit = (await this.o.registry.listNetworks()).find((n) => n.name.toLowerCase() === t && n.id !== BACKBONE_NETWORK)
    if (hit === undefined) throw notFound(text)
    return hit.id
  }

  async create(p: { name: string; join_rule: JoinRule; token?: string; max_members?: number; allowed_ports?: number[]; members_resolve?: boolean }) {
    const policy: Partial<NetworkPolicy> = {}
    if (p.max_members !== undefined) policy.maxMembers = p.max_members
    if (p.allowed_ports !== undefined) policy.allowedPorts = p.allowed_ports
    if (p.members_resolve !== undefined) policy.membersResolve = p.members_resolve
    const r = await this.o.registry.createNetwork(this.o.selfId, {
      name: p.name,
      joinRule: p.join_rule,
      ...(p.token === undefined ? {} : { token: p.token }),
      ...(Object.keys(policy).length === 0 ? {} : { policy }),
    })
    await this.o.view.refresh()
    return { network_id: r.networkId, name: r.name, join_rule: p.join_rule }
  }

  async join(p: { network: string; token?: string; invite?: string }) {
    const invite = p.invite === undefined ? undefined : this.o.inviteText.decode(p.invite)
    const id = await this.networkId(p.network)
    if (invite !== undefined && invite.networkId !== id) {
      throw new PilotError('PT_NETWORK_INVITE_INVALID', `the invite is for network ${invite.networkId}, not ${id}`, { hint: 'use the invite with the network it names' })
    }
    if (invite !== undefined && invite.inviteeId !== this.o.selfId) {
      throw new PilotError('PT_NETWORK_INVITE_INVALID', `the invite is for node ${invite.inviteeId}, and this is node ${this.o.selfId}`, {
        hint: 'ask an owner/admin: `pilot-tun network invite <net> <you>`',
      })
    }
    const r = await this.o.registry.joinNetwork(this.o.selfId, id, {
      ...(p.token === undefined ? {} : { token: p.token }),
      ...(invite === undefined ? {} : { invite }),
    })
    await this.o.view.refresh()
    return { network_id: r.networkId, address: r.address }
  }

  async leave(p: { network: string }) {
    const id = await this.networkId(p.network)
    const r = await this.o.registry.leaveNetwork(this.o.selfId, id)
    await this.o.view.refresh()
    return { network_id: r.networkId }
  }

  async invite(p: { network: string; node: string; ttl_s?: number }) {
    const id = await this.networkId(p.network)
    const invitee = await this.o.resolveNode(p.node)
    const i = await this.o.registry.createInvite(this.o.selfId, id, invitee, p.ttl_s ?? DEFAULT_INVITE_TTL_S)
    return { network_id: id, invite: this.o.inviteText.encode(i), invitee_id: i.inviteeId, expires: i.expires }
  }

  async members(p: { network: string }) {
    const id = await this.networkId(p.network)
    const info = await this.o.registry.networkInfo(this.o.selfId, id)
    return infoJson(info)
  }

  async policy(p: { network: string; max_members?: number; allowed_ports?: number[]; members_resolve?: boolean }) {
    const id = await this.networkId(p.network)
    const change: Partial<NetworkPolicy> = {}
    if (p.max_members !== undefined) change.maxMembers = p.max_members
    if (p.allowed_ports !== undefined) change.allowedPorts = p.allowed_ports
    if (p.members_resolve !== undefined) change.membersResolve = p.members_resolve
    if (Object.keys(change).length === 0) {
      const info = await this.o.registry.networkInfo(this.o.selfId, id)
      return { network_id: id, changed: false, policy: policyJson(info.policy) }
    }
    const policy = await this.o.registry.setNetworkPolicy(this.o.selfId, id, change)
    await this.o.view.refresh(id)
    return { network_id: id, changed: true, policy: policyJson(policy) }
  }

  async list() {
    const all = await this.o.registry.listNetworks()
    return {
      networks: all.map((n) => {
        const mine = n.id === BACKBONE_NETWORK ? undefined : this.o.view.get(n.id)
        return { id: n.id, name: n.name, members: n.members, join_rule: n.joinRule, member: n.id === BACKBONE_NETWORK || mine !== undefined, role: mine?.role ?? null }
      }),
    }
  }

  async role(p: { network: string; node: string; role: NetworkRole }) {
    const id = await this.networkId(p.network)
    const node = await this.o.resolveNode(p.node)
    await this.o.registry.setMemberRole(this.o.selfId, id, node, p.role)
    await this.o.view.refresh(id)
    return { network_id: id, node_id: node, role: p.role }
  }

  async remove(p: { network: string; node: string }) {
    const id = await this.networkId(p.network)
    const node = await this.o.resolveNode(p.node)
    await this.o.registry.removeMember(this.o.selfId, id, node)
    await this.o.view.refresh(id)
    return { network_id: id, node_id: node }
  }

  /** `audit.list`: a registry chain (network N; 0 = trust, needs the admin token), or the local trust log. */
  async auditList(p: { network?: string; admin_token?: string; local?: boolean }): Promise<{ local: boolean; network_id: number | null; entries: AuditEntryJson[] | TrustLogEntry[] }> {
    if (p.local === true) return { local: true, network_id: null, entries: await this.localLog().entries() }
    const id = await this.chainId(p.network)
    const entries = await this.o.registry.auditLog(this.o.selfId, id, p.admin_token === undefined ? {} : { adminToken: p.admin_token })
    return { local: false, network_id: id, entries: entries.map(auditEntryJson) }
  }

  /** `audit.verify`: checks the chain here (the registry is not trusted with the verdict). */
  async auditVerify(p: { network?: string; admin_token?: string; local?: boolean }): Promise<VerifyJson> {
    if (p.local === true) {
      const v = await this.localLog().verify()
      return v.ok ? { ok: true, network_id: null, local: true, entries: v.entries, head: v.head } : { ok: false, network_id: null, local: true, entries: v.entries, first_broken: v.first_broken, reason: v.reason }
    }
    const id = await this.chainId(p.network)
    const entries = await this.o.registry.auditLog(this.o.selfId, id, p.admin_token === undefined ? {} : { adminToken: p.admin_token })
    const v = this.o.verify(entries)
    return v.ok
      ? { ok: true, network_id: id, local: false, entries: v.entries, head: v.head }
      : { ok: false, network_id: id, local: false, entries: v.entries, first_broken: v.firstBroken, reason: v.reason }
  }

  /** The chain to read: omitted or "0" = the trust chain 0; otherwise a network. */
  private async chainId(network: string | undefined): Promise<number> {
    if (network === undefined || network.trim() === '0') return BACKBONE_NETWORK
    return this.networkId(network)
  }

  private localLog(): Pick<TrustLog, 'entries' | 'verify'> {
    if (this.o.trustLog === null) throw new PilotError('PT_DAEMON_CLOSED', 'this daemon keeps no local trust log')
    return this.o.trustLog
  }
}

export function infoJson(info: NetworkInfo) {
  return {
    network_id: info.id,
    name: info.name,
    join_rule: info.joinRule,
    created: info.created,
    policy: policyJson(info.policy),
    members: info.members.map((m) => ({ node_id: m.nodeId, role: m.role, address: m.address, hostname: m.hostname ?? null })),
  }
}
