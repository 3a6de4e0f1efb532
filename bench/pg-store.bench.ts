/**
 * Micro-figures of the PostgreSQL registry store (issue 14), on a throwaway
 * server (test/util/postgres.ts) or on PILOT_PG_URL:
 *   - the heartbeat path's store reads (findKey + getNode), from LANES
 *     concurrent callers, per second;
 *   - flushTouches of 10,000 gathered heartbeats (one statement).
 * Run: npx tsc -p tsconfig.json && node dist/bench/pg-store.bench.js
 * Knobs: PILOT_PGBENCH_NODES (10000), PILOT_PGBENCH_LANES (16), PILOT_PGBENCH_SECONDS (5), PILOT_PGBENCH_POOL (10).
 */
import { PostgresRegistryStore } from '../src/registry/pg-store.js'
import { startTestPostgres } from '../test/util/postgres.js'

const NODES = Number(process.env.PILOT_PGBENCH_NODES ?? 10_000)
const LANES = Number(process.env.PILOT_PGBENCH_LANES ?? 16)
const SECONDS = Number(process.env.PILOT_PGBENCH_SECONDS ?? 5)
const POOL = Number(process.env.PILOT_PGBENCH_POOL ?? 10)

function keyOf(i: number): string {
  const b = Buffer.alloc(32)
  b.writeUInt32BE(i, 0)
  b.write('pilot-bench', 4)
  return b.toString('base64')
}

async function main(): Promise<void> {
  const given = process.env.PILOT_PG_URL
  const pg = given === undefined ? await startTestPostgres() : null
  if (pg !== null && 'skip' in pg) {
    console.log(`skipped: ${pg.skip}`)
    return
  }
  const url = given ?? (await pg!.createDatabase('pgbench_store'))
  const store = await PostgresRegistryStore.open(url, { poolSize: POOL })
  try {
    const t0 = performance.now()
    const ids: number[] = []
    for (let i = 0; i < NODES; i += 200) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(200, NODES - i) }, (_, j) => store.createNode({ publicKey: keyOf(i + j), owner: null, realAddr: '10.0.0.1:4000', now: Date.now() })),
      )
      for (const n of batch) ids.push(n.id)
    }
    const regS = (performance.now() - t0) / 1000
    console.log(`created ${NODES} nodes in ${regS.toFixed(1)} s (${Math.round(NODES / regS)}/s, createNode, ${POOL} connections)`)

    for (let round = 1; round <= 3; round++) {
      let ops = 0
      const end = performance.now() + SECONDS * 1000
      const lane = async (seed: number): Promise<void> => {
        let i = seed
        while (performance.now() < end) {
          i = (i * 1_103_515_245 + 12_345) % NODES
          const k = await store.findKey(keyOf(i))
          await store.getNode(k!.nodeId)
          ops++
        }
      }
      await Promise.all(Array.from({ length: LANES }, (_, l) => lane(l + round)))
      console.log(`round ${round}: heartbeat reads (findKey + getNode): ${Math.round(ops / SECONDS)}/s with ${LANES} lanes`)
    }

    for (let round = 1; round <= 3; round++) {
      const now = Date.now()
      for (const id of ids.slice(0, 10_000)) store.touchNode(id, now + round)
      const f0 = performance.now()
      await store.flushTouches()
      console.log(`round ${round}: flushTouches of ${Math.min(10_000, ids.length)} touches: ${(performance.now() - f0).toFixed(1)} ms`)
    }
  } finally {
    await store.close()
    if (pg !== null && !('skip' in pg)) await pg.stop()
  }
}

await main()
