/** `pilot-tun down`: asks the running daemon to stop and waits until its control socket is gone. */
import type { Argv, CommandModule } from 'yargs'
import { access } from 'node:fs/promises'
import { ControlError, ControlErrorCode } from '../../daemon/control/protocol.js'
import { PilotError } from '../../errors.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { printResult } from '../output.js'

interface DownArgs extends DaemonClientArgs {
  wait: number
}

export const downCommand: CommandModule<object, DownArgs> = {
  command: 'down',
  describe: 'stop the running daemon (waits until it has shut down)',
  builder: (y) =>
    withDaemonOptions(y).option('wait', { type: 'number', default: 15, describe: 'seconds to wait for the daemon to exit' }) as Argv<DownArgs>,
  handler: async (args) => {
    const path = args['control-socket']
    const started = performance.now()
    await withDaemon(args, async (c) => {
      try {
        await c.call('shutdown', {})
      } catch (err) {
        // The daemon may close the connection before its answer is read; that is success too.
        if (!(err instanceof PilotError && err.code === ControlErrorCode.CLOSED)) throw err
      }
    })
    const deadline = started + args.wait * 1000
    while (await exists(path)) {
      if (performance.now() > deadline) {
        throw new ControlError(ControlErrorCode.TIMEOUT, `the daemon accepted the shutdown but ${path} is still there after ${args.wait} s`, {
          hint: 'it may be stuck closing connections; check its log, or stop it with SIGTERM',
        })
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    const seconds = Math.round(performance.now() - started) / 1000
    printResult(args, { status: 'stopped', control_socket: path, seconds }, () => `pilot-tun daemon stopped (${seconds.toFixed(1)} s)`)
  },
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}
