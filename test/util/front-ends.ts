/**
 * Registry front ends as child processes (registry-front-end.ts), for the
 * fault tests and the load benchmark: each can be stopped cleanly or killed
 * with SIGKILL, as a crashed machine would be.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export interface FrontEnd {
  host: string
  port: number
  pid: number
  child: ChildProcess
  /** RegistryServer.stats() and the RSS of the process. */
  stats(): Promise<{ stats: Record<string, unknown>; rss: number }>
  /** SIGKILL: no clean close, no flush. */
  kill(): Promise<void>
  /** A clean stop (the registry closes its store). */
  stop(): Promise<void>
}

const childPath = fileURLToPath(new URL('./registry-front-end.js', import.meta.url))

export async function startFrontEnd(spec: string, o: { port?: number; execArgv?: string[] } = {}): Promise<FrontEnd> {
  const child = fork(childPath, [spec, String(o.port ?? 0)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: o.execArgv ?? [] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ready = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('registry front end did not start within 20 s')), 20_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`registry front end exited with ${code} before listening`))
    })
    child.on('message', (m: { kind?: string; host?: string; port?: number }) => {
      if (m.kind === 'ready') {
        clearTimeout(timer)
        resolve({ host: m.host!, port: m.port! })
      }
    })
  }).catch((err: Error) => {
    child.kill('SIGKILL')
    throw err
  })
  const alive = (): boolean => child.exitCode === null && child.signalCode === null
  return {
    ...ready,
    pid: child.pid!,
    child,
    stats: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('registry front end did not answer stats within 10 s')), 10_000)
        const onMessage = (m: { kind?: string; stats?: Record<string, unknown>; rss?: number }): void => {
          if (m.kind !== 'stats') return
          clearTimeout(timer)
          child.off('message', onMessage)
          resolve({ stats: m.stats ?? {}, rss: m.rss ?? 0 })
        }
        child.on('message', onMessage)
        child.send({ kind: 'stats' })
      }),
    kill: async () => {
      if (alive()) child.kill('SIGKILL')
      await exited
    },
    stop: async () => {
      if (!alive()) return
      if (child.connected) child.send({ kind: 'stop' })
      else child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    },
  }
}
