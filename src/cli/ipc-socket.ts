/**
 * `pilot-tun up --ipc-socket PATH`: the Go reference's driver IPC
 * (src/ipc/, docs/wire.md §14) next to the control socket, so the
 * reference's `pilotctl` and driver programs run against this daemon. Loaded
 * only when asked for.
 */
import type { Daemon } from '../daemon/daemon.js'
import type { Logger } from '../logger.js'

export interface RunningIpcSocket {
  close(): Promise<void>
}

/** Opens the IPC socket for `daemon`; rejects with PT_IPC_IN_USE / PT_IPC_PATH. */
export async function startIpcSocket(daemon: Daemon, path: string, logger: Logger): Promise<RunningIpcSocket> {
  const [{ IpcServer }, { daemonIpcHost }] = await Promise.all([import('../ipc/server.js'), import('../daemon/ipc-host.js')])
  const server = new IpcServer({ path, host: daemonIpcHost(daemon), logger })
  await server.listen()
  return server
}
