// The root part of the TUN tests. tun-netns.test.ts runs this file with
// `ip netns exec NS node …` inside a namespace it created, so nothing here can
// touch the host's interfaces or routes:
//
//   [ namespace pilot-test-XXXX ]
//     lo (up)
//     pilot0 (TUN, this process) fd50:494c:4f54::2a/128, mtu 65520
//       route fd50:494c:4f54::/48 dev pilot0 src fd50:494c:4f54::2a
//     app sockets on [fd50:494c:4f54::2a]  <-->  the daemon side reads/writes pilot0
//
// Refuses to run anywhere else (the guard below), since `node --test` may pick
// up helper files in test folders.
import { execFileSync, spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { tunConformance, collectUdp, type KernelListener, type TunHarness } from './conformance.js'
import { NativeTunDevice, type TunDeviceOptions } from '../../src/tun/device.js'
import { assertInterfaceFree, cleanupStale, InterfaceSetup, openTunInterface } from '../../src/tun/interface-setup.js'
import { TunError } from '../../src/tun/tun-errors.js'

const NODE = 'fd50:494c:4f54::2a'
const PEER = 'fd50:494c:4f54::99'
const NAME = 'pilot0'

function insideOurNamespace(): boolean {
  const want = process.env['PILOT_TUN_NETNS_CHILD']
  if (want === undefined || !/^pilot-test-[0-9a-f]+$/.test(want)) return false
  try {
    return execFileSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).trim() === want
  } catch {
    return false
  }
}

/**
 * dist/src, the addon, package.json (for "type": "module") and the one
 * dependency those modules import (ip-address) copied to a
 * fresh directory that every user may read, whatever the checkout's path.
 */
function copyForUnprivilegedChild(): string {
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
  const dir = mkdtempSync(join(tmpdir(), 'pilot-tun-perm-'))
  cpSync(join(repo, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true })
  cpSync(join(repo, 'build', 'Release', 'pilot_tun_native.node'), join(dir, 'build', 'Release', 'pilot_tun_native.node'))
  cpSync(join(repo, 'package.json'), join(dir, 'package.json'))
  cpSync(join(repo, 'node_modules', 'ip-address'), join(dir, 'node_modules', 'ip-address'), { recursive: true })
  const openUp = (p: string): void => {
    const isDir = statSync(p).isDirectory()
    chmodSync(p, isDir ? 0o755 : 0o644)
    if (isDir) for (const name of readdirSync(p)) openUp(join(p, name))
  }
  openUp(dir)
  return dir
}

function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function nativeHarness(options: TunDeviceOptions): Promise<TunHarness> {
  const t = await openTunInterface({ ...options, name: NAME, mtu: 65520, address: NODE })
  const sender = dgram.createSocket('udp6')
  await new Promise<void>((r) => sender.bind(0, NODE, r))
  const listeners: dgram.Socket[] = []
  return {
    device: t.device,
    nodeAddress: NODE,
    peerAddress: PEER,
    sendFromKernel(payload, dstPort) {
      return new Promise((resolve, reject) =>
        sender.send(payload, dstPort, PEER, (err) => (err ? reject(err) : resolve(sender.address().port))),
      )
    },
    async listen(): Promise<KernelListener> {
      const s = dgram.createSocket('udp6')
      listeners.push(s)
      const queue: { payload: Buffer; fromPort: number }[] = []
      let wake: (() => void) | null = null
      s.on('message', (msg, rinfo) => {
        queue.push({ payload: msg, fromPort: rinfo.port })
        wake?.()
      })
      await new Promise<void>((r) => s.bind(0, NODE, r))
      return {
        port: s.address().port,
        async next(timeoutMs = 2000) {
          const deadline = Date.now() + timeoutMs
          while (queue.length === 0) {
            if (Date.now() > deadline) throw new Error('no datagram reached the application socket')
            await new Promise<void>((r) => {
              wake = r
              setTimeout(r, 20)
            })
          }
          return queue.shift()!
        },
        close: () => new Promise<void>((r) => s.close(() => r())),
      }
    },
    async close() {
      for (const s of listeners) await new Promise<void>((r) => s.close(() => r())).catch(() => {})
      await new Promise<void>((r) => sender.close(() => r()))
      await t.close()
      assert.equal(linkExists(NAME), false, 'closing removes the interface')
    },
  }
}

if (insideOurNamespace()) {
  tunConformance('native', nativeHarness)

  test('native: set-up gives MTU 65520, the node address (nodad) and the prefix route with src', async () => {
    const t = await openTunInterface({ name: NAME, address: NODE })
    try {
      const link = JSON.parse(ip('-j', 'link', 'show', 'dev', NAME))[0]
      assert.equal(link.mtu, 65520)
      assert.ok(link.flags.includes('UP'))
      const addrs = JSON.parse(ip('-j', '-6', 'addr', 'show', 'dev', NAME))[0].addr_info
      const a = addrs.find((x: { local: string }) => x.local === NODE)
      assert.equal(a.prefixlen, 128)
      assert.ok(!addrs.some((x: { tentative?: boolean }) => x.tentative), 'nodad: no tentative address')
      const routes = JSON.parse(ip('-j', '-6', 'route', 'show', 'dev', NAME))
      const r = routes.find((x: { dst: string }) => x.dst === 'fd50:494c:4f54::/48')
      assert.equal(r.prefsrc, NODE)
      assert.equal(t.setup.configured, true)
    } finally {
      await t.close()
    }
    assert.equal(linkExists(NAME), false)
  })

  test('native: a second open of the same name is refused with PT_TUN_IN_USE naming the holder', async () => {
    const t = await openTunInterface({ name: NAME, address: NODE })
    try {
      assert.throws(() => NativeTunDevice.open({ name: NAME }), (e: unknown) => e instanceof TunError && e.code === 'PT_TUN_IN_USE')
      await assert.rejects(assertInterfaceFree(NAME), (e: unknown) => {
        return e instanceof TunError && e.code === 'PT_TUN_IN_USE' && e.message.includes(`[${process.pid}]`) && /pilot-tun down/.test(e.hint ?? '')
      })
      await assert.rejects(openTunInterface({ name: NAME, address: NODE }), (e: unknown) => e instanceof TunError && e.code === 'PT_TUN_IN_USE')
      await assert.rejects(cleanupStale(NAME), (e: unknown) => e instanceof TunError && e.code === 'PT_TUN_IN_USE')
      assert.ok(linkExists(NAME), 'the refused attempts left the first interface alone')
    } finally {
      await t.close()
    }
  })

  test('native: teardown is idempotent, also after close removed everything', async () => {
    const t = await openTunInterface({ name: NAME, address: NODE, reflector: 'fd50:494c:4f55::1' })
    assert.ok(ip('-6', 'route', 'show', 'dev', NAME).includes('fd50:494c:4f55::1'), 'a reflector outside the prefix gets its own route')
    await t.close()
    await t.close()
    await t.setup.teardown()
    await new InterfaceSetup({ name: NAME, address: NODE }).teardown()
    assert.equal(linkExists(NAME), false)
  })

  test('native: the reader mode is the one asked for (a pilot-tun-rd thread only in thread mode)', async () => {
    const t = await openTunInterface({ name: NAME, address: NODE })
    try {
      t.device.onPackets(() => {})
      const threads = readdirSync('/proc/self/task').map((id) => {
        try {
          return readFileSync(`/proc/self/task/${id}/comm`, 'utf8').trim()
        } catch {
          return ''
        }
      })
      const loop = process.env.PILOT_TUN_READER === 'loop'
      assert.equal(threads.includes('pilot-tun-rd'), !loop, `threads: ${threads.join(', ')}`)
    } finally {
      await t.close()
    }
  })

  test('native: deleting the interface under a running reader reports PT_TUN_READER_FAILED', async () => {
    const t = await openTunInterface({ name: NAME, address: NODE })
    try {
      const failed = new Promise<string>((resolve) => t.device.onError((e) => resolve(e.code)))
      t.device.onPackets(() => {})
      await t.setup.teardown() // deletes the link while the device holds it
      assert.equal(await failed, 'PT_TUN_READER_FAILED')
    } finally {
      await t.close()
    }
  })

  test('native: close does not hang with batches queued behind a slow handler, nor from inside the handler', async () => {
    for (const fromHandler of [false, true]) {
      const t = await openTunInterface({ name: NAME, address: NODE, batch: 4, queue: 1 })
      const s = dgram.createSocket('udp6')
      await new Promise<void>((r) => s.bind(0, NODE, r))
      let calls = 0
      let callsAfterClose = 0
      t.device.onPackets(() => {
        if (t.device.closed) callsAfterClose++
        calls++
        const until = Date.now() + 3
        while (Date.now() < until); // a slow consumer: the queue toward JS fills
        if (fromHandler && calls === 3) t.device.close()
      })
      for (let i = 0; i < 120; i++) s.send(Buffer.alloc(64), 9, PEER)
      while (calls < 3) await sleep(2)
      const t0 = Date.now()
      await t.close()
      assert.ok(Date.now() - t0 < 1000, 'close returned promptly')
      await sleep(30)
      assert.equal(callsAfterClose, 0)
      await new Promise<void>((r) => s.close(() => r()))
    }
  })

  test('native: cleanupStale removes a persistent TUN nobody holds and leaves other links alone', async () => {
    assert.equal(await cleanupStale('stale0'), 'absent')
    ip('tuntap', 'add', 'dev', 'stale0', 'mode', 'tun')
    await assert.rejects(assertInterfaceFree('stale0'), (e: unknown) => e instanceof TunError && e.code === 'PT_TUN_IN_USE')
    assert.equal(await cleanupStale('stale0'), 'removed')
    assert.equal(linkExists('stale0'), false)
    if (spawnSync('ip', ['link', 'add', 'dum0', 'type', 'dummy'], { stdio: 'ignore' }).status === 0) {
      try {
        await assert.rejects(cleanupStale('dum0'), (e: unknown) => e instanceof TunError && /not a TUN/.test(e.message))
        assert.ok(linkExists('dum0'))
      } finally {
        ip('link', 'del', 'dum0')
      }
    }
  })

  test('native: without root or CAP_NET_ADMIN, open and ip fail with PT_TUN_PERMISSION', async () => {
    const holder = NativeTunDevice.open({ name: 'perm0' })
    // The unprivileged child cannot read a checkout under a 0700 directory
    // (/root, mktemp -d): it runs a world-readable copy of what it imports.
    const copy = copyForUnprivilegedChild()
    try {
      const base = pathToFileURL(join(copy, 'dist', 'src', 'tun') + '/')
      const script = `
        const { NativeTunDevice } = await import(${JSON.stringify(new URL('device.js', base).href)})
        const { InterfaceSetup, hasNetAdmin } = await import(${JSON.stringify(new URL('interface-setup.js', base).href)})
        const out = { hasNetAdmin: hasNetAdmin() }
        try { NativeTunDevice.open({ name: 'perm1' }) } catch (e) { out.open = e.code; out.openHint = e.hint }
        try { await new InterfaceSetup({ name: 'perm0', address: '${NODE}' }).up() } catch (e) { out.ip = e.code; out.ipMessage = e.message }
        console.log(JSON.stringify(out))`
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 10_000,
      })
      assert.equal(r.status, 0, r.stderr)
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
      assert.equal(out.hasNetAdmin, false)
      assert.equal(out.open, 'PT_TUN_PERMISSION')
      assert.match(out.openHint, /sudo|CAP_NET_ADMIN/)
      assert.equal(out.ip, 'PT_TUN_PERMISSION')
      assert.match(out.ipMessage, /`ip link set dev perm0 mtu 65520 up` failed: .*Operation not permitted/)
    } finally {
      holder.close()
      rmSync(copy, { recursive: true, force: true })
    }
  })

  test('native: batches carry many packets when the reader falls behind', async () => {
    const t = await openTunInterface({ name: NAME, address: NODE })
    try {
      const got = collectUdp(t.device, 4010, 300)
      // Another process sends while spawnSync blocks this JS thread: the
      // reader thread fills its queue toward JS, then the kernel queues, and
      // once JS runs again each wake-up drains many packets.
      const sender = `
        const s = require('node:dgram').createSocket('udp6')
        let n = 0
        s.bind(0, '${NODE}', () => { for (let i = 0; i < 300; i++) s.send(Buffer.alloc(32), 4010, '${PEER}', () => { if (++n === 300) s.close() }) })`
      const r = spawnSync(process.execPath, ['-e', sender], { encoding: 'utf8', timeout: 10_000 })
      assert.equal(r.status, 0, r.stderr)
      const { batches } = await got
      assert.ok(Math.max(...batches.map((b) => b.count)) > 1, 'at least one multi-packet batch')
    } finally {
      await t.close()
    }
  })
} else if (process.argv[1] === fileURLToPath(import.meta.url) && process.env['PILOT_TUN_NETNS_CHILD'] !== undefined) {
  console.error('netns-child: refusing to run outside the namespace named in PILOT_TUN_NETNS_CHILD')
  process.exit(2)
}
