/** Options every command that talks to a running daemon shares, and the one way they connect. */
import type { Argv } from 'yargs'
import { ControlClient, DEFAULT_CONTROL_SOCKET } from '../daemon/control/client.js'

export interface DaemonClientArgs {
  'control-socket': string
  json: boolean
}

export function withDaemonOptions<T>(y: Argv<T>): Argv<T & DaemonClientArgs> {
  return y
    .option('control-socket', {
      type: 'string',
      default: process.env.PILOT_TUN_CONTROL_SOCKET ?? DEFAULT_CONTROL_SOCKET,
      defaultDescription: `${DEFAULT_CONTROL_SOCKET} or $PILOT_TUN_CONTROL_SOCKET`,
      describe: 'the daemon\'s control socket',
    })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON' }) as Argv<T & DaemonClientArgs>
}

/** Connects to the daemon, runs `fn`, and always closes the connection. */
export async function withDaemon<R>(args: DaemonClientArgs, fn: (client: ControlClient) => Promise<R>): Promise<R> {
  const client = await ControlClient.connect(args['control-socket'])
  try {
    return await fn(client)
  } finally {
    client.close()
  }
}
