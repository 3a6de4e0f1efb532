/**
 * The driver IPC's view of a running daemon (`IpcHost`, src/ipc/host.ts):
 * streams, datagrams, trust and registry commands, and the InfoOK object,
 * shaped like the Go reference's answers (docs/wire.md §14) so its `pilotctl`
 * and driver programs read them unchanged. Times are Unix seconds there.
 */
import type { Daemon } from './daemon.js'
import type { IpcHost, IpcJson, IpcStream } from '../ipc/host.js'
import { formatAddress } from '../protocol/address.js'
import { formatHostPort } from '../protocol/host-port.js'
import { HandshakeSub, type IpcHandshake } from '../protocol/ipc-frames.js'
import { streamStateName } from '../session/index.js'

/** Builds the IPC host of `daemon` (`owner`: the registration's owner, shown by `info`). */
export function daemonIpcHost(daemon: Daemon, owner = ''): IpcHost {
  const parts = daemon.parts
  const { client, session, store, trust, tunnel, driver, streams } = parts
  const nodeId = daemon.nodeId
  /** Ports an IPC client bound (Go counts its bound ports in `ports`). */
  const ipcPorts = new Set<number>()
  return {
    openStream: (addr, port) => daemon.openStream(addr, port) as Promise<IpcStream>,
    listen: (port, onStream) => {
      daemon.listenStreams(port, onStream)
      ipcPorts.add(port)
    },
    unlisten: (port) => {
      daemon.unlistenStreams(port)
      ipcPorts.delete(port)
    },
    sendDatagram: (addr, port, data) => void daemon.sendDatagram(addr, port, data),
    addDatagramListener: (fn) => streams.addDatagramListener(fn),

    async info(connId) {
      const peers = tunnel.peers()
      let bytesSent = 0
      let bytesRecv = 0
      let pktsSent = 0
      let pktsRecv = 0
      for (const p of peers) {
        bytesSent += p.bytesOut
        bytesRecv += p.bytesIn
        pktsSent += p.packetsOut
        pktsRecv += p.packetsIn
      }
      const handles = driver.streamHandles()
      let fallbackId = 0x80000000
      const connList = handles.map((h) => {
        const c = h.connection
        const st = c.stats()
        return {
          id: connId(h) ?? fallbackId++,
          local_port: c.localPort,
          remote_addr: formatAddress(c.remoteAddress),
          remote_port: c.remotePort,
          state: streamStateName(c.state),
          cong_win: st.cwnd,
          ssthresh: 0,
          in_flight: c.writableLength,
          srtt_ms: st.srtt < 0 ? 0 : Math.round(st.srtt * 1000) / 1000,
          rttvar_ms: 0,
          unacked: c.writableLength,
          ooo_buf: 0,
          peer_recv_win: 0,
          recv_win: 0,
          in_recovery: false,
          bytes_sent: st.bytesSent,
          bytes_recv: 0,
          segs_sent: st.dataSegmentsSent,
          segs_recv: st.dataSegmentsReceived,
          retransmits: st.retransmits,
          fast_retx: st.fastRetransmits,
          sack_recv: 0,
          sack_sent: 0,
          dup_acks: st.duplicateSegments,
        }
      })
      return {
        address: formatAddress(daemon.address),
        authenticated_peers: peers.filter((p) => p.authenticated).length,
        bytes_recv: bytesRecv,
        bytes_sent: bytesSent,
        conn_list: connList,
        connections: parts.endpoint.connectionCount,
        encrypt: true,
        encrypted_peers: peers.filter((p) => p.kdf !== null).length,
        hostname: session.hostname ?? '',
        identity: true,
        node_id: nodeId,
        owner,
        peer_list: peers.map((p) => ({
          authenticated: p.authenticated,
          encrypted: p.kdf !== null,
          endpoint: p.endpoint === null ? '' : formatHostPort(p.endpoint.host, p.endpoint.port),
          node_id: p.nodeId,
        })),
        peers: peers.length,
        pkts_recv: pktsRecv,
        pkts_sent: pktsSent,
        // Go counts its own services and the bound ports: ours are echo (7) and trust (444), and the IPC's.
        ports: 2 + ipcPorts.size,
        public_key: Buffer.from(daemon.identity.publicKey).toString('base64'),
        uptime_secs: Math.floor((performance.now() - parts.startedAt) / 1000),
      }
    },

    async handshake(h: IpcHandshake): Promise<IpcJson> {
      switch (h.sub) {
        case HandshakeSub.Send:
          streams.checkOpen()
          return { node_id: h.nodeId, status: await trust.request(h.nodeId, h.justification) }
        case HandshakeSub.Approve:
          streams.checkOpen()
          await trust.approve(h.nodeId)
          return { node_id: h.nodeId, status: 'approved' }
        case HandshakeSub.Reject:
          streams.checkOpen()
          await trust.reject(h.nodeId, h.reason)
          return { node_id: h.nodeId, status: 'rejected' }
        case HandshakeSub.Revoke:
          streams.checkOpen()
          await trust.revoke(h.nodeId)
          return { node_id: h.nodeId, status: 'revoked' }
        case HandshakeSub.Pending:
          return {
            pending: store.listPending().map((p) => ({
              justification: p.justification ?? '',
              node_id: p.node_id,
              public_key: p.public_key ?? '',
              received_at: unixSeconds(p.received_at),
            })),
          }
        case HandshakeSub.Trusted:
          return {
            trusted: store.listTrusted().map((t) => ({
              approved_at: unixSeconds(t.approved_at),
              mutual: t.mutual,
              network: t.network ?? 0,
              node_id: t.node_id,
              public_key: t.public_key,
            })),
          }
      }
    },

    resolveHostname: (hostname) => client.request({ type: 'resolve_hostname', hostname }),
    async setHostname(hostname) {
      const applied = await session.setHostname(hostname)
      return { hostname: applied, node_id: nodeId, type: 'set_hostname_ok' }
    },
    async setVisibility(isPublic) {
      const r = await client.setVisibility(nodeId, isPublic)
      return { node_id: nodeId, type: 'set_visibility_ok', visibility: r.visibility }
    },
    async setTags(tags) {
      const r = await client.setTags(nodeId, tags)
      return { node_id: nodeId, tags: r.tags.length === 0 ? null : r.tags, type: 'set_tags_ok' }
    },
    async setTaskExec(enabled) {
      const r = await client.setTaskExec(nodeId, enabled)
      return { node_id: nodeId, task_exec: r.taskExec, type: 'set_task_exec_ok' }
    },
    async deregister() {
      await client.deregister(nodeId)
      return { type: 'deregister_ok' }
    },
  }
}

/** ISO text (our trust store) → Unix seconds (the reference's JSON). */
function unixSeconds(iso: string): number {
  const ms = Date.parse(iso)
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0
}
