#!/usr/bin/env node
// Thin launcher so the bin path exists before the TypeScript build has run.
import { main } from '../dist/src/cli/main.js'

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (err) => {
    process.stderr.write(`pilot-tun: ${err && err.message ? err.message : String(err)}\n`)
    process.exitCode = 1
  },
)
