/**
 * Sends `bytes` random bytes over one TCP connection and prints their SHA-256
 * (JSON `{sha, bytes, ms}`) once the kernel has them all; for the interop test
 * that feeds the reference's gateway, which carries them over a Pilot stream.
 *
 *   node tcp-send.js HOST PORT BYTES
 */
import { createHash, randomBytes } from 'node:crypto'
import { connect } from 'node:net'

const [host, port, count] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])]
const t0 = performance.now()
const hash = createHash('sha256')
const socket = connect(port, host, () => {
  let left = count
  const pump = (): void => {
    while (left > 0) {
      const chunk = randomBytes(Math.min(65_536, left))
      hash.update(chunk)
      left -= chunk.length
      if (!socket.write(chunk)) {
        socket.once('drain', pump)
        return
      }
    }
    socket.end()
  }
  pump()
})
socket.on('data', () => {})
socket.on('error', (err) => {
  process.stderr.write(`tcp-send: ${err.message}\n`)
  process.exit(1)
})
socket.on('finish', () => {
  process.stdout.write(JSON.stringify({ sha: hash.digest('hex'), bytes: count, ms: Math.round(performance.now() - t0) }) + '\n')
  setTimeout(() => process.exit(0), 200)
})
