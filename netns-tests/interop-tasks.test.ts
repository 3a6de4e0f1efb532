// Interop of the task submission service (port 1003, docs/wire.md §13.5) with
// the Go reference: `pilotctl task ...` on a reference daemon against
// `pilot-tun task ...` on a pilot-tun daemon, both directions, on the
// pilot-tun rendezvous and on the reference rendezvous; polo scores read from
// the registry; and the reference CLI reading pilot-tun's task folder.
// Skips, saying why, without the reference binaries.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Identity } from '../src/crypto/identity.js'
import { RegistryClient } from '../src/registry/client.js'
import { Daemon } from '../src/daemon/index.js'
import { Bench, HOST, ReferenceNode, referenceLookup, waitFor, withBench } from './helpers/reference-bench.js'

const skip = referenceLookup.reason ?? false

interface RefTask {
  task_id: string
  status: string
  category: string
  description: string
}
interface PtTask {
  task_id: string
  status: string
  status_justification: string
  result_path?: string
}

type Rendezvous = { registry: string; beacon: string }

/** A pilot-tun node and a reference node that trust each other (pilot-tun asks, the reference approves). */
async function trustedPair(bench: Bench, rv: Rendezvous): Promise<{ ref: ReferenceNode; pt: { control: string; nodeId: number; address: string } }> {
  const [ref, pt] = await Promise.all([bench.referenceDaemon('refk', rv), bench.pilotTunUp('ptk', rv)])
  const req = await bench.pilotTun(['trust', 'request', 'refk', '--reason', 'tasks', '--control-socket', pt.control])
  assert.equal(req.code, 0, req.stdout + req.stderr)
  await ref.approveWhenPending(pt.nodeId)
  await bench.pilotTunTrusts(pt.control, ref.nodeId)
  return { ref, pt }
}

/** `pilot-tun task ...` with --json; the transcript gets the command and its output too. */
async function ptTask(bench: Bench, control: string, args: string[]): Promise<{ code: number | null; json: unknown; out: string }> {
  const r = await bench.pilotTun(['task', ...args, '--json', '--control-socket', control], 60_000)
  bench.transcript.push(`[+${((Date.now() - bench.startedAt) / 1000).toFixed(1)} s] $ pilot-tun task ${args.join(' ')} --json  → exit ${r.code}: ${(r.stdout + r.stderr).replace(/\s+/g, ' ').trim().slice(0, 300)}`)
  let json: unknown = null
  try {
    json = JSON.parse(r.stdout)
  } catch {
    json = null
  }
  return { code: r.code, json, out: r.stdout + r.stderr }
}

async function refTasks(ref: ReferenceNode, type?: string): Promise<RefTask[]> {
  const r = await ref.ctl(['task', 'list', ...(type === undefined ? [] : ['--type', type])])
  return ((r.json as { tasks: RefTask[] | null } | null)?.tasks ?? []) as RefTask[]
}

async function ptTasks(bench: Bench, control: string, type: string): Promise<PtTask[]> {
  const r = await bench.pilotTun(['task', 'list', '--type', type, '--json', '--control-socket', control])
  return (JSON.parse(r.stdout) as { tasks: PtTask[] }).tasks
}

function registryClient(rv: Rendezvous): RegistryClient {
  const [host, port] = rv.registry.split(':')
  return new RegistryClient({ host: host!, port: Number(port), identity: Identity.generate(), timeoutMs: 5_000 })
}

async function scores(reg: RegistryClient, ...nodes: number[]): Promise<number[]> {
  return Promise.all(nodes.map(async (n) => (await reg.getPoloScore(n)).poloScore))
}

/** Both directions of the whole task flow, refusals by polo score, a decline, and the folder check. */
async function taskInterop(bench: Bench, rv: Rendezvous): Promise<void> {
  const { ref, pt } = await trustedPair(bench, rv)
  const reg = registryClient(rv)
  try {
    assert.deepEqual(await scores(reg, ref.nodeId, pt.nodeId), [0, 0])
    // `task enable` sets the registry's task_exec flag, as `pilotctl enable-tasks` does.
    const en = await ptTask(bench, pt.control, ['enable'])
    assert.deepEqual(en.json, { node_id: pt.nodeId, task_exec: true }, en.out)
    assert.equal((await reg.lookup(pt.nodeId)).taskExec, true)

    // ── reference submits, pilot-tun works ──
    const sub = await ref.ctl(['task', 'submit', 'ptk', '--task', 'ref asks pilot-tun'], 30_000)
    assert.equal(sub.code, 0, sub.stdout + sub.stderr)
    const subJson = sub.json as { accepted: boolean; status: number; message: string; task_id: string }
    assert.equal(subJson.accepted, true, sub.stdout)
    assert.equal(subJson.status, 200)
    assert.equal(subJson.message, 'Task received with status NEW')
    const id1 = subJson.task_id
    assert.deepEqual((await ptTasks(bench, pt.control, 'received')).map((t) => [t.task_id, t.status]), [[id1, 'NEW']])
    assert.equal((await ptTask(bench, pt.control, ['accept', '--id', id1])).code, 0)
    await waitFor('the reference to see ACCEPTED', async () => (await refTasks(ref)).find((t) => t.task_id === id1)?.status === 'ACCEPTED')
    const ex = await ptTask(bench, pt.control, ['execute'])
    assert.equal((ex.json as { task_id: string; status: string }).task_id, id1, ex.out)
    await waitFor('the reference to see EXECUTING', async () => (await refTasks(ref)).find((t) => t.task_id === id1)?.status === 'EXECUTING')
    const sent = await ptTask(bench, pt.control, ['send-results', '--id', id1, '--results', 'pilot-tun did it'])
    assert.equal(sent.code, 0, sent.out)
    await waitFor('the reference to see COMPLETED', async () => (await refTasks(ref)).find((t) => t.task_id === id1)?.status === 'COMPLETED')
    assert.equal(readFileSync(join(ref.home, '.pilot', 'tasks', 'results', `${id1}_result.txt`), 'utf8'), 'pilot-tun did it')
    assert.equal((await ptTasks(bench, pt.control, 'received'))[0]!.status, 'SUCCEEDED')
    // The reference (submitter) −1, pilot-tun (worker) +1.
    await waitFor('scores after the first task', async () => (await scores(reg, ref.nodeId, pt.nodeId)).join() === '-1,1')

    // ── pilot-tun submits, the reference works (pilot-tun 1 ≥ reference −1) ──
    const mine = await ptTask(bench, pt.control, ['submit', 'refk', '--task', 'pilot-tun asks the reference'])
    assert.equal(mine.code, 0, mine.out)
    const id2 = (mine.json as { task_id: string; status: number }).task_id
    assert.deepEqual((await refTasks(ref, 'received')).filter((t) => t.task_id === id2).map((t) => t.status), ['NEW'])
    assert.equal((await ref.ctl(['task', 'accept', '--id', id2])).code, 0)
    await waitFor('pilot-tun to see ACCEPTED', async () => (await ptTasks(bench, pt.control, 'submitted')).find((t) => t.task_id === id2)?.status === 'ACCEPTED')
    assert.equal((await ref.ctl(['task', 'execute'])).code, 0)
    await waitFor('pilot-tun to see EXECUTING', async () => (await ptTasks(bench, pt.control, 'submitted')).find((t) => t.task_id === id2)?.status === 'EXECUTING')
    const file = join(bench.dir, 'answer.md')
    writeFileSync(file, '# the answer\n42\n')
    const refSent = await ref.ctl(['task', 'send-results', '--id', id2, '--file', file], 30_000)
    assert.equal(refSent.code, 0, refSent.stdout + refSent.stderr)
    const done = await waitFor('pilot-tun to see COMPLETED', async () => (await ptTasks(bench, pt.control, 'submitted')).find((t) => t.task_id === id2 && t.status === 'COMPLETED'))
    assert.equal(readFileSync(done.result_path!, 'utf8'), '# the answer\n42\n')
    assert.equal(done.result_path, join(bench.dir, 'ptk', 'tasks', 'results', `${id2}_answer.md`))
    await waitFor('scores after the second task', async () => (await scores(reg, ref.nodeId, pt.nodeId)).join() === '0,0')

    // ── the polo check, both ways ──
    await reg.setPoloScore(pt.nodeId, -5)
    const low = await ptTask(bench, pt.control, ['submit', 'refk', '--task', 'too poor'])
    assert.equal(low.code, 1, low.out)
    assert.equal((low.json as { error: { code: string; message: string } }).error.code, 'PT_TASK_REFUSED')
    assert.match(low.out, /Polo score too low: submitter=-5, receiver=0/)
    await reg.setPoloScore(pt.nodeId, 2)
    await reg.setPoloScore(ref.nodeId, -3)
    const refLow = await ref.ctl(['task', 'submit', 'ptk', '--task', 'too poor too'], 30_000)
    assert.equal((refLow.json as { accepted: boolean; message: string }).accepted, false, refLow.stdout)
    assert.equal((refLow.json as { message: string }).message, 'Polo score too low: submitter=-3, receiver=2')
    assert.equal((await ptTasks(bench, pt.control, 'received')).length, 1)

    // ── a decline travels with its justification ──
    await reg.setPoloScore(ref.nodeId, 5)
    const again = await ref.ctl(['task', 'submit', 'ptk', '--task', 'decline me'], 30_000)
    const id3 = (again.json as { task_id: string }).task_id
    assert.equal((await ptTask(bench, pt.control, ['decline', '--id', id3, '--justification', 'not today'])).code, 0)
    await waitFor('the reference to see DECLINED', async () => (await refTasks(ref)).find((t) => t.task_id === id3)?.status === 'DECLINED')
    const refFile = JSON.parse(readFileSync(join(ref.home, '.pilot', 'tasks', 'submitted', `${id3}.json`), 'utf8')) as { status_justification: string }
    assert.equal(refFile.status_justification, 'not today')

    // ── the reference CLI reads pilot-tun's task folder as its own ──
    const home = join(bench.dir, 'reader-home')
    mkdirSync(join(home, '.pilot'), { recursive: true })
    symlinkSync(join(bench.dir, 'ptk', 'tasks'), join(home, '.pilot', 'tasks'))
    const reader = new ReferenceNode(bench, home, join(bench.dir, 'no-daemon.sock'))
    const seen = await refTasks(reader)
    assert.deepEqual(
      seen.map((t) => [t.task_id, t.category, t.status]).sort(),
      [
        [id1, 'received', 'SUCCEEDED'],
        [id2, 'submitted', 'COMPLETED'],
        [id3, 'received', 'DECLINED'],
      ].sort(),
    )
  } finally {
    reg.close()
  }
}

test('interop tasks on the pilot-tun rendezvous: reference ⇄ pilot-tun, results, polo scores, refusals, decline, shared folder format', { skip, timeout: 120_000 }, async (t) => {
  await withBench(t, async (bench) => taskInterop(bench, await bench.pilotTunRendezvous()))
})

test('interop tasks on the reference rendezvous: the same flow against the reference registry', { skip, timeout: 120_000 }, async (t) => {
  await withBench(t, async (bench) => taskInterop(bench, await bench.referenceRendezvous()))
})

test('interop task timers: a pilot-tun worker (timers shortened) tells a reference submitter CANCELLED and EXPIRED; the expiry costs the worker a point', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.pilotTunRendezvous()
    const ref = await bench.referenceDaemon('refk', rv)
    const daemon = await Daemon.start({
      stateDir: join(bench.dir, 'inproc'),
      registry: rv.registry,
      beacon: rv.beacon,
      listen: `${HOST}:0`,
      hostname: 'ptk',
      timing: { heartbeatMs: 1_000, tasks: { newTimeoutMs: 1_500, headTimeoutMs: 1_500, tickMs: 200 } },
    })
    const reg = registryClient(rv)
    try {
      await daemon.trustRequest('refk', 'timers')
      await ref.approveWhenPending(daemon.nodeId)
      await waitFor('pilot-tun to trust the reference', async () => daemon.isTrusted(ref.nodeId))

      // Not answered: cancelled by pilot-tun, and (unlike a [G] worker) the submitter is told.
      const a = await ref.ctl(['task', 'submit', 'ptk', '--task', 'nobody answers'], 30_000)
      const idA = (a.json as { task_id: string }).task_id
      await waitFor('the reference to see CANCELLED', async () => (await refTasks(ref)).find((x) => x.task_id === idA)?.status === 'CANCELLED', 15_000)
      const fileA = JSON.parse(readFileSync(join(ref.home, '.pilot', 'tasks', 'submitted', `${idA}.json`), 'utf8')) as { status_justification: string }
      assert.equal(fileA.status_justification, 'Task cancelled: no response within 1 minute')

      // Accepted but never executed: expires at the head of the queue; the worker loses a point.
      const b = await ref.ctl(['task', 'submit', 'ptk', '--task', 'accepted, then forgotten'], 30_000)
      const idB = (b.json as { task_id: string }).task_id
      await daemon.task({ op: 'accept', id: idB })
      await waitFor('the reference to see EXPIRED', async () => (await refTasks(ref)).find((x) => x.task_id === idB)?.status === 'EXPIRED', 15_000)
      await waitFor('the worker to lose a point', async () => (await reg.getPoloScore(daemon.nodeId)).poloScore === -1)
      assert.deepEqual((await daemon.task({ op: 'list', type: 'received' })).tasks.map((x) => [x.task_id, x.status]).sort(), [[idA, 'CANCELLED'], [idB, 'EXPIRED']].sort())
    } finally {
      reg.close()
      await daemon.close()
    }
  })
})
