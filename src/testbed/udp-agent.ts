/**
 * A tiny UDP agent that runs inside a test-bed namespace (started by
 * `UdpAgent.start`, udp-probe.ts): a STUN-like reflector and a traffic
 * source/sink for NAT, loss and duplication checks.
 *
 *   node udp-agent.js [--port N] [--bind ADDR] [--reflect] [--quiet]
 *
 * stdin, one JSON command a line:
 *   {"op":"send","host":"198.18.0.2","port":3478,"data":"hi","count":1}
 *   {"op":"stats"}      {"op":"reset"}
 * stdout, one JSON event a line:
 *   {"ev":"ready","port":N}   {"ev":"recv","from":IP,"port":N,"data":TEXT}  (not with --quiet)
 *   {"ev":"sent","count":N}   {"ev":"stats","received":N,"distinct":N}
 * With --reflect, every datagram not starting with "seen " is answered with
 * "seen IP:PORT", the source address this host observed. The agent exits when
 * stdin closes.
 */
import { createSocket } from 'node:dgram'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    bind: { type: 'string', default: '0.0.0.0' },
    reflect: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
})

const sock = createSocket('udp4')
let received = 0
let distinct = new Set<string>()
const emit = (o: object) => process.stdout.write(JSON.stringify(o) + '\n')

sock.on('message', (msg, rinfo) => {
  received++
  const data = msg.toString('utf8')
  distinct.add(data)
  if (!values.quiet) emit({ ev: 'recv', from: rinfo.address, port: rinfo.port, data })
  if (values.reflect && !data.startsWith('seen ')) sock.send(`seen ${rinfo.address}:${rinfo.port}`, rinfo.port, rinfo.address)
})
sock.on('error', (err) => {
  emit({ ev: 'error', message: err.message })
  process.exit(1)
})

interface Command {
  op: string
  host?: string
  port?: number
  data?: string
  count?: number
}

/** Sends `count` datagrams, 16 at a time with a 1 ms pause, so the receiver's socket buffer never overflows. */
function send(cmd: Command): void {
  const count = cmd.count ?? 1
  let i = 0
  const step = () => {
    for (let n = 0; n < 16 && i < count; n++, i++) {
      sock.send(count === 1 ? (cmd.data ?? '') : `${cmd.data ?? ''}#${i}`, cmd.port!, cmd.host!)
    }
    if (i < count) setTimeout(step, 1)
    else setTimeout(() => emit({ ev: 'sent', count }), 5)
  }
  step()
}

sock.bind(Number(values.port), values.bind, () => {
  emit({ ev: 'ready', port: sock.address().port })
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    let cmd: Command
    try {
      cmd = JSON.parse(line) as Command
    } catch {
      emit({ ev: 'error', message: `bad command ${line}` })
      return
    }
    if (cmd.op === 'send') send(cmd)
    else if (cmd.op === 'stats') emit({ ev: 'stats', received, distinct: distinct.size })
    else if (cmd.op === 'reset') {
      received = 0
      distinct = new Set()
      emit({ ev: 'reset' })
    } else emit({ ev: 'error', message: `unknown op ${cmd.op}` })
  })
  rl.on('close', () => sock.close(() => process.exit(0)))
})
