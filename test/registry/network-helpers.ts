/** Fixtures for the network tests: a registry on a file store (so tests can look at and alter the SQLite directly) and registered nodes. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import Database from 'better-sqlite3'
import { randomBytes } from 'node:crypto'
import { Identity } from '../../src/crypto/identity.js'
import { RegistryServer } from '../../src/registry/server.js'
import { SqliteRegistryStore } from '../../src/registry/store.js'
import { RegistryClient } from '../../src/registry/client.js'
import { RegistryChallenge } from '../../src/registry/challenges.js'
import { RegistryError } from '../../src/registry/errors.js'
import type { JsonObject } from '../../src/protocol/registry-framing.js'
import { FakeClock, testClient } from './helpers.js'

export interface TestNode {
  client: RegistryClient
  identity: Identity
  nodeId: number
}

export interface NetworkBench {
  server: RegistryServer
  store: SqliteRegistryStore
  clock: FakeClock
  port: number
  dbPath: string
  nodes: TestNode[]
  /** Registers one more node. */
  addNode(): Promise<TestNode>
  /** Every network table (and the trust tables) as text: equal before and after = nothing changed. */
  snapshot(): string
  /** A second, writable connection to the store file (close it). */
  openDb(): Database.Database
  /** Stops the server and reopens the same file (a registry restart). */
  restart(): Promise<void>
}

export const ADMIN_TOKEN = 'registry-admin-secret-0123456789'

export async function withNetworkBench(count: number, body: (b: NetworkBench) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-netreg-'))
  const dbPath = join(dir, 'registry.db')
  const clock = new FakeClock()
  let store = new SqliteRegistryStore({ path: dbPath })
  let server = new RegistryServer({ store, now: clock.now, adminToken: ADMIN_TOKEN })
  let port = (await server.listen('127.0.0.1', 0)).port
  const clients: RegistryClient[] = []
  const bench: NetworkBench = {
    get server() {
      return server
    },
    get store() {
      return store
    },
    clock,
    get port() {
      return port
    },
    dbPath,
    nodes: [],
    async addNode() {
      const identity = Identity.generate()
      const client = testClient(port, identity, { now: clock.now })
      clients.push(client)
      const { nodeId } = await client.register({ listenAddr: `127.0.0.1:${4000 + bench.nodes.length}` })
      const node = { client, identity, nodeId }
      bench.nodes.push(node)
      return node
    },
    snapshot() {
      const db = new Database(dbPath, { readonly: true })
      try {
        const tables = ['networks', 'network_members', 'network_invites', 'used_nonces', 'audit_log', 'trust_pairs', 'trust_reports', 'counters']
        return JSON.stringify(tables.map((t) => db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()))
      } finally {
        db.close()
      }
    },
    openDb() {
      return new Database(dbPath)
    },
    async restart() {
      await server.close()
      await store.close()
      store = new SqliteRegistryStore({ path: dbPath })
      server = new RegistryServer({ store, now: clock.now, adminToken: ADMIN_TOKEN })
      port = (await server.listen('127.0.0.1', port)).port
    },
  }
  try {
    for (let i = 0; i < count; i++) await bench.addNode()
    await body(bench)
  } finally {
    for (const c of clients) c.close()
    await server.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Asserts `promise` rejects with RegistryError `code` (and a hint for the codes that have one). */
export async function rejectsCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<RegistryError> {
  let caught: RegistryError | undefined
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RegistryError, String(e))
    assert.equal(e.code, code, e.message)
    if (message !== undefined) assert.match(e.message, message)
    caught = e
    return true
  })
  return caught!
}

/** Asserts the request is refused with `code` and that the store did not change at all. */
export async function refusedUnchanged(b: NetworkBench, promise: () => Promise<unknown>, code: string, message?: RegExp): Promise<RegistryError> {
  const before = b.snapshot()
  const err = await rejectsCode(promise(), code, message)
  assert.equal(b.snapshot(), before, `refused ${code} changed the store`)
  return err
}

/** A signed network write built by hand (for replays and tampering). */
export function signedWrite(
  node: TestNode,
  type: string,
  fields: JsonObject,
  sig: { action: string; networkId: number; subject: number; detail: string; timestamp: number; nonce?: string },
): JsonObject {
  const nonce = sig.nonce ?? randomBytes(16).toString('hex')
  const challenge = RegistryChallenge.network({ ...sig, nodeId: node.nodeId, nonce })
  return { type, ...fields, node_id: node.nodeId, timestamp: sig.timestamp, nonce, signature: node.identity.signChallenge(challenge) }
}
