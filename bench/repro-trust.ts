import { startTestPostgres } from '../test/util/postgres.js'
import { PostgresRegistryStore } from '../src/registry/pg-store.js'
import { startRegistry } from '../src/registry/start.js'
import { RegistryClient } from '../src/registry/client.js'
import { Identity } from '../src/crypto/identity.js'
const pg = await startTestPostgres()
if ('skip' in pg) throw new Error(pg.skip)
const url = await pg.createDatabase('rep')
const logger: any = { error: (m: string, f: unknown) => console.log('ERR', m, JSON.stringify(f)), warn: () => {}, info: () => {}, debug: () => {}, child: () => logger }
const regs: Awaited<ReturnType<typeof startRegistry>>[] = []
for (let i = 0; i < 3; i++) regs.push(await startRegistry({ host: '127.0.0.1', port: 0, store: await PostgresRegistryStore.open(url, { logger }), logger, limits: { registrationsPerMinute: 1e9 } }))
const N = 150
const clients = Array.from({ length: N }, (_, i) => new RegistryClient({ host: '127.0.0.1', port: regs[i % 3]!.address.port, identity: Identity.generate(), timeoutMs: 20000 }))
const ids = await Promise.all(clients.map(async (c, i) => (await c.register({ listenAddr: `127.0.0.1:${10000 + i}` })).nodeId))
let fails = 0
await Promise.all(clients.map(async (c, i) => {
  const peer = i % 2 === 0 ? i + 1 : i - 1
  try { await c.reportTrust(ids[i]!, ids[peer]!) } catch (e) { fails++; console.log('fail', (e as Error).message) }
}))
console.log('fails', fails)
for (const c of clients) c.close()
for (const r of regs) await r.close()
await pg.stop()
