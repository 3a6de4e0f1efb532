/**
 * Ordinary programs for the TUN tests, run inside a node's namespace with
 * `node dist/netns-tests/helpers/overlay-apps.js MODE ...`. They know nothing
 * about Pilot: they bind and connect with the kernel's IPv6 sockets, and the
 * overlay is whatever the routing table sends into pilot0.
 *
 *   http PORT BYTES      HTTP server on [::]:PORT. GET /blob serves BYTES of
 *                        deterministic data (blob(BYTES)); PUT or POST /upload
 *                        answers {"sha256","bytes","remote"} for the body;
 *                        GET /whoami answers {"remote","remote_port","local"};
 *                        GET / answers a short text page naming the client.
 *                        Prints `ready {"port","sha256","bytes"}` once listening.
 *   name PORT TEXT       HTTP server on [::]:PORT answering every GET with
 *                        TEXT and a newline (the networks test: which node
 *                        answered); prints `ready {"port"}` once listening.
 *   udp-echo PORT        UDP echo server on [::]:PORT; prints `ready {"port"}`.
 *   connect HOST PORT TIMEOUT_MS
 *                        One TCP connect(); prints {"ok","code","ms"} (code: the
 *                        errno name, e.g. ECONNREFUSED, EACCES, EHOSTUNREACH, or
 *                        "TIMEOUT"), exits 0.
 *   udp-ping HOST PORT COUNT TIMEOUT_MS
 *                        Sends COUNT datagrams one after another, waits up to
 *                        TIMEOUT_MS for each echo, prints one JSON line
 *                        {"sent","received","from","rtt_ms"} and exits 0 when
 *                        every datagram came back intact, 1 otherwise.
 *
 * Only the entry point runs a mode; importing this module (for `blob`) does not.
 */
import { createServer } from 'node:http'
import { createHash, createCipheriv } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'

/** BYTES of deterministic pseudo-random data: AES-128-CTR of zeros under the key of 16 bytes `seed`. */
export function blob(bytes: number, seed = 0): Buffer {
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16))
  return Buffer.concat([c.update(Buffer.alloc(bytes)), c.final()])
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function httpServer(port: number, bytes: number): void {
  const data = blob(bytes)
  const digest = sha256(data)
  const server = createServer((req, res) => {
    const remote = req.socket.remoteAddress ?? ''
    const url = req.url ?? '/'
    if ((req.method === 'PUT' || req.method === 'POST') && url === '/upload') {
      const h = createHash('sha256')
      let n = 0
      req.on('data', (b: Buffer) => {
        h.update(b)
        n += b.length
      })
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ sha256: h.digest('hex'), bytes: n, remote }) + '\n')
      })
      return
    }
    if (req.method === 'GET' && url === '/blob') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(data.length) })
      res.end(data)
      return
    }
    if (req.method === 'GET' && url === '/whoami') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ remote, remote_port: req.socket.remotePort, local: req.socket.localAddress }) + '\n')
      return
    }
    if (req.method === 'GET' && url === '/') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`hello from the overlay; you are ${remote}\n`)
      return
    }
    res.writeHead(404).end()
  })
  server.listen({ port, host: '::', ipv6Only: true }, () => {
    process.stdout.write(`ready ${JSON.stringify({ port, sha256: digest, bytes })}\n`)
  })
}

function nameServer(port: number, text: string): void {
  const server = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(`${text}\n`)
  })
  server.listen({ port, host: '::', ipv6Only: true }, () => process.stdout.write(`ready ${JSON.stringify({ port })}\n`))
}

function udpEcho(port: number): void {
  const s = createSocket({ type: 'udp6', ipv6Only: true })
  s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address))
  s.bind(port, '::', () => process.stdout.write(`ready ${JSON.stringify({ port })}\n`))
}

async function udpPing(host: string, port: number, count: number, timeoutMs: number): Promise<number> {
  const s = createSocket('udp6')
  await new Promise<void>((r) => s.bind(0, () => r()))
  let received = 0
  const rtts: number[] = []
  let from = ''
  for (let i = 0; i < count; i++) {
    const payload = Buffer.from(`pilot-tun udp echo ${i} ${'x'.repeat(i * 100)}`)
    const t0 = process.hrtime.bigint()
    const ok = await new Promise<boolean>((r) => {
      const timer = setTimeout(() => {
        s.off('message', onMsg)
        r(false)
      }, timeoutMs)
      const onMsg = (msg: Buffer, rinfo: { address: string; port: number }): void => {
        if (!msg.equals(payload)) return
        clearTimeout(timer)
        s.off('message', onMsg)
        from = `[${rinfo.address}]:${rinfo.port}`
        r(true)
      }
      s.on('message', onMsg)
      s.send(payload, port, host)
    })
    if (ok) {
      received++
      rtts.push(Number(process.hrtime.bigint() - t0) / 1e6)
    }
  }
  s.close()
  process.stdout.write(JSON.stringify({ sent: count, received, from, rtt_ms: rtts.map((x) => Math.round(x * 1000) / 1000) }) + '\n')
  return received === count ? 0 : 1
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((done) => {
    const t0 = performance.now()
    const report = (ok: boolean, code: string | null): void => {
      clearTimeout(timer)
      sock.destroy()
      process.stdout.write(JSON.stringify({ ok, code, ms: Math.round(performance.now() - t0) }) + '\n')
      done()
    }
    const sock = connect({ host, port })
    const timer = setTimeout(() => report(false, 'TIMEOUT'), timeoutMs)
    sock.once('connect', () => report(true, null))
    sock.once('error', (e: NodeJS.ErrnoException) => report(false, e.code ?? e.message))
  })
}

async function main(argv: string[]): Promise<void> {
  const [mode, ...rest] = argv
  const num = (i: number): number => {
    const v = Number(rest[i])
    if (!Number.isFinite(v)) throw new Error(`${mode}: argument ${i + 1} must be a number, got ${JSON.stringify(rest[i])}`)
    return v
  }
  switch (mode) {
    case 'http':
      httpServer(num(0), num(1))
      return
    case 'name':
      nameServer(num(0), rest[1] ?? '')
      return
    case 'udp-echo':
      udpEcho(num(0))
      return
    case 'connect':
      await tcpConnect(rest[0] ?? '', num(1), num(2))
      return
    case 'udp-ping':
      process.exitCode = await udpPing(rest[0] ?? '', num(1), num(2), num(3))
      return
    default:
      throw new Error(`unknown mode ${JSON.stringify(mode)} (http, name, udp-echo, connect, udp-ping)`)
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`overlay-apps: ${(err as Error).message}\n`)
    process.exit(2)
  })
}
