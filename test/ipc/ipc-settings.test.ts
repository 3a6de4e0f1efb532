// `--ipc-socket` / the `ipc-socket` config key, and the socket file's life:
// a stale file left by a killed process is replaced, the file goes on close.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { lstat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveUpSettings } from '../../src/cli/commands/up.js'
import { IpcServer } from '../../src/ipc/server.js'
import type { IpcHost } from '../../src/ipc/host.js'
import { IpcCommand } from '../../src/protocol/ipc-frames.js'
import { waitFor } from '../daemon/helpers.js'
import { TestIpcClient } from './ipc-client.js'

test('--ipc-socket: off by default, flag and config key accepted, the flag wins', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-ipc-'))
  try {
    const none = join(dir, 'none.json')
    writeFileSync(none, JSON.stringify({ registry: '127.0.0.1:9000' }))
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', 'ipc-socket': '/run/x/pilot.sock' }))
    assert.equal((await resolveUpSettings({ config: none })).ipcSocket, null)
    assert.equal((await resolveUpSettings({ config })).ipcSocket, '/run/x/pilot.sock')
    assert.equal((await resolveUpSettings({ config, 'ipc-socket': '/tmp/p.sock' })).ipcSocket, '/tmp/p.sock')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

/** Enough of a host for Info; the rest refuses. */
function fakeHost(): IpcHost {
  const no = async (): Promise<never> => {
    throw new Error('not in this test')
  }
  return {
    openStream: no,
    listen: () => {},
    unlisten: () => {},
    sendDatagram: () => {},
    addDatagramListener: () => () => {},
    info: async () => ({ node_id: 42 }),
    handshake: no,
    resolveHostname: no,
    setHostname: no,
    setVisibility: no,
    setTags: no,
    setTaskExec: no,
    deregister: no,
  }
}

test('a stale socket file (its process was killed) is replaced; the file is removed on close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-ipc-'))
  const path = join(dir, 'pilot.sock')
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1]); setInterval(() => {}, 1e6)", path], { stdio: 'ignore' })
  try {
    await waitFor(() => existsSync(path), 'the other process\'s socket')
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    assert.ok((await lstat(path)).isSocket(), 'the killed process left its socket file')
    const server = new IpcServer({ path, host: fakeHost() })
    await server.listen()
    const c = await TestIpcClient.connect(path)
    c.send({ cmd: IpcCommand.Info })
    assert.deepEqual(await c.json(IpcCommand.InfoOK), { node_id: 42 })
    c.close()
    await server.close()
    assert.equal(existsSync(path), false)
  } finally {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})
