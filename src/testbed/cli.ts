#!/usr/bin/env node
/**
 * The namespace test bed by hand (root only); see scripts/README.md.
 *
 *   node dist/src/testbed/cli.js up [--spec default|full|minimal|FILE.json] [--loss N] [--dup N] [--detach] [--json]
 *   node dist/src/testbed/cli.js status [--json]
 *   node dist/src/testbed/cli.js exec [--id ID] NODE -- COMMAND [ARG...]
 *   node dist/src/testbed/cli.js set [--id ID] [--loss N] [--dup N] [--nat NODE=KIND] [--flush NODE]
 *   node dist/src/testbed/cli.js down [--id ID | --all]
 *   node dist/src/testbed/cli.js cleanup
 *
 * `up` stays in the foreground and tears the test bed down on Ctrl-C or
 * SIGTERM; with --detach it leaves it up (until `down`) and exits.
 * `down` without options removes detached test beds and those of dead owners;
 * `--all` also removes the ones whose owner still runs (other people's tests).
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { PilotError } from '../errors.js'
import { TestbedError, TestbedErrorCode } from './errors.js'
import { checkNatKind, type TopologySpec } from './plan.js'
import { SPECS } from './specs.js'
import { Topology, removeTestbed } from './topology.js'

const USAGE = `usage: cli.js up [--spec NAME|FILE] [--loss N] [--dup N] [--detach] [--json]
       cli.js status [--json]
       cli.js exec [--id ID] NODE -- COMMAND [ARG...]
       cli.js set [--id ID] [--loss N] [--dup N] [--nat NODE=KIND] [--flush NODE]
       cli.js down [--id ID | --all]
       cli.js cleanup
specs: ${Object.keys(SPECS).join(', ')}; NAT kinds: full-cone, port-restricted, symmetric`

function loadSpec(name: string): TopologySpec {
  const named = SPECS[name]
  if (named !== undefined) return named
  try {
    return JSON.parse(readFileSync(name, 'utf8')) as TopologySpec
  } catch (err) {
    throw new TestbedError(TestbedErrorCode.BAD_SPEC, `--spec ${name}: not a named spec and not a readable JSON file (${(err as Error).message})`, {
      hint: `named specs: ${Object.keys(SPECS).join(', ')}`,
    })
  }
}

function describe(t: Topology): string {
  const rows = [`test bed ${t.id}  hub ${t.namespace('hub')}  loss ${t.impairments.loss}%  dup ${t.impairments.duplication}%`]
  for (const n of t.nodes) {
    const role = n.rendezvous ? 'rendezvous' : n.kind === 'public' ? 'public' : `nat ${t.natKind(n.name)}`
    const where = n.router === null ? n.address : `${n.address} behind ${n.router.name} ${n.router.wanAddress}`
    rows.push(`  ${n.name.padEnd(12)} ${role.padEnd(20)} ${where.padEnd(40)} ns ${n.namespace}`)
  }
  return rows.join('\n')
}

function summary(t: Topology): object {
  return {
    id: t.id,
    hub: t.namespace('hub'),
    nodes: t.nodes.map((n) => ({
      name: n.name,
      kind: n.kind,
      nat: n.nat,
      rendezvous: n.rendezvous,
      namespace: n.namespace,
      address: n.address,
      publicAddress: n.publicAddress,
      tunnelPort: n.tunnelPort,
      router: n.router,
    })),
  }
}

function pickId(id: string | undefined): string {
  if (id !== undefined) return id
  const all = Topology.list().filter((r) => r.alive)
  if (all.length === 1) return all[0]!.id
  throw new TestbedError(TestbedErrorCode.NOT_FOUND, all.length === 0 ? 'no test bed is up' : `${all.length} test beds are up`, {
    hint: all.length === 0 ? 'start one with `cli.js up --detach`' : `pick one with --id (${all.map((r) => r.id).join(', ')})`,
  })
}

function num(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n)) throw new TestbedError(TestbedErrorCode.BAD_VALUE, `${what} must be a number, got ${v}`)
  return n
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'up': {
      const { values } = parseArgs({
        args: rest,
        options: {
          spec: { type: 'string', default: 'default' },
          loss: { type: 'string' },
          dup: { type: 'string' },
          detach: { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
        },
      })
      const spec: TopologySpec = { ...loadSpec(values.spec!) }
      const loss = num(values.loss, '--loss')
      const dup = num(values.dup, '--dup')
      if (loss !== undefined) spec.loss = loss
      if (dup !== undefined) spec.duplication = dup
      const t = await Topology.create(spec, { detached: values.detach })
      console.log(values.json ? JSON.stringify(summary(t)) : describe(t))
      if (values.detach) {
        if (!values.json) console.log(`detached; remove with: cli.js down --id ${t.id}`)
        return 0
      }
      if (!values.json) console.log('up; Ctrl-C tears it down')
      // Signal listeners alone do not keep the event loop alive; the interval does.
      const keepAlive = setInterval(() => {}, 1 << 30)
      await new Promise<void>((resolve) => {
        for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, () => resolve())
      })
      clearInterval(keepAlive)
      await t.destroy()
      return 0
    }
    case 'status': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } } })
      const all = Topology.list()
      if (values.json) {
        console.log(JSON.stringify(all.map((r) => ({ id: r.id, pid: r.pid, alive: r.alive, detached: r.detached, createdAt: r.createdAt, layout: r.layout }))))
        return 0
      }
      if (all.length === 0) console.log('no test beds')
      for (const r of all) {
        const state = r.detached ? 'detached' : r.alive ? `owned by pid ${r.pid}` : `stale (pid ${r.pid} is gone)`
        console.log(`${r.id}  ${state}  since ${r.createdAt}`)
        if (r.layout !== null) console.log(describe(Topology.attach(r.id)).split('\n').slice(1).join('\n'))
      }
      return 0
    }
    case 'exec': {
      const dash = rest.indexOf('--')
      if (dash < 0) throw new TestbedError(TestbedErrorCode.BAD_VALUE, 'exec: put the command after --', { hint: 'cli.js exec b -- ping -c 1 198.18.1.2' })
      const { values, positionals } = parseArgs({ args: rest.slice(0, dash), options: { id: { type: 'string' } }, allowPositionals: true })
      const node = positionals[0]
      const command = rest.slice(dash + 1)
      if (node === undefined || command.length === 0) throw new TestbedError(TestbedErrorCode.BAD_VALUE, 'exec: need NODE -- COMMAND')
      const t = Topology.attach(pickId(values.id))
      const child = spawn('ip', ['netns', 'exec', t.namespace(node), ...command], { stdio: 'inherit' })
      return await new Promise<number>((resolve) => {
        child.on('error', () => resolve(127))
        child.on('exit', (code, sig) => resolve(code ?? (sig === null ? 1 : 128)))
      })
    }
    case 'set': {
      const { values } = parseArgs({
        args: rest,
        options: { id: { type: 'string' }, loss: { type: 'string' }, dup: { type: 'string' }, nat: { type: 'string', multiple: true }, flush: { type: 'string', multiple: true } },
      })
      const t = Topology.attach(pickId(values.id))
      const loss = num(values.loss, '--loss')
      const dup = num(values.dup, '--dup')
      if (loss !== undefined) await t.setLoss(loss)
      if (dup !== undefined) await t.setDuplication(dup)
      for (const spec of values.nat ?? []) {
        const [node, kind] = spec.split('=')
        if (node === undefined || kind === undefined) throw new TestbedError(TestbedErrorCode.BAD_VALUE, `--nat ${spec}: want NODE=KIND`)
        await t.setNatKind(node, checkNatKind(kind))
      }
      for (const node of values.flush ?? []) await t.flushConntrack(node)
      return 0
    }
    case 'down': {
      const { values } = parseArgs({ args: rest, options: { id: { type: 'string' }, all: { type: 'boolean', default: false } } })
      if (values.id !== undefined) {
        const removed = await removeTestbed(values.id)
        console.log(`removed ${values.id}: ${removed.length} namespaces`)
        return 0
      }
      const stale = await Topology.cleanupStale()
      if (stale.namespaces.length > 0 || stale.owners.length > 0) console.log(`removed stale: ${[...stale.owners].join(', ') || stale.namespaces.join(', ')}`)
      for (const r of Topology.list()) {
        if (r.detached || values.all) {
          await removeTestbed(r.id)
          console.log(`removed ${r.id}`)
        }
      }
      return 0
    }
    case 'cleanup': {
      const r = await Topology.cleanupStale()
      console.log(`removed ${r.namespaces.length} namespaces, ${r.links.length} links, ${r.owners.length} owner records`)
      return 0
    }
    default:
      console.error(USAGE)
      return cmd === undefined || cmd === '--help' || cmd === '-h' ? 0 : 2
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof PilotError) {
      console.error(`error ${err.code}: ${err.message}${err.hint === undefined ? '' : `\nhint: ${err.hint}`}`)
    } else {
      console.error(err instanceof Error ? err.message : String(err))
    }
    process.exit(1)
  },
)
