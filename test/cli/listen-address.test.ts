// The listen flags of `registry`, `beacon` and `rendezvous`: the shared
// host:port rules, each command's own error code, the flag named.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError } from '../../src/errors.js'
import { parseListenAddress as parseBeaconListen } from '../../src/cli/commands/beacon.js'
import { parseListenAddress as parseRegistryListen } from '../../src/cli/commands/registry.js'

test('registry --listen: IP or localhost, [IPv6], :PORT; PT_CONFIG_INVALID naming the flag', () => {
  assert.deepEqual(parseRegistryListen('localhost:9000'), { host: 'localhost', port: 9000 })
  assert.deepEqual(parseRegistryListen('[2001:db8::1]:0'), { host: '2001:db8::1', port: 0 })
  assert.throws(() => parseRegistryListen('::1:9000'), (e: unknown) => e instanceof ConfigError && /^--listen "::1:9000": write an IPv6 address in brackets/.test(e.message))
  assert.throws(() => parseRegistryListen('x:1', '--registry-listen'), (e: unknown) => e instanceof ConfigError && /^--registry-listen "x:1"/.test(e.message) && /\[::\]:9000/.test(e.hint ?? ''))
})

test('beacon --listen: IP, [IPv6], :PORT or PORT; PT_BEACON_INVALID_LISTEN naming the flag', () => {
  assert.deepEqual(parseBeaconListen('[::1]:0'), { host: '::1', port: 0 })
  assert.deepEqual(parseBeaconListen('0'), { host: '0.0.0.0', port: 0 })
  assert.throws(() => parseBeaconListen('[1.2.3.4]:9001'), { code: 'PT_BEACON_INVALID_LISTEN', message: /^--listen "\[1\.2\.3\.4\]:9001": \[1\.2\.3\.4\] is not an IPv6 address/ })
  assert.throws(() => parseBeaconListen('localhost:9001', '--beacon-listen'), { code: 'PT_BEACON_INVALID_LISTEN', message: /^--beacon-listen "localhost:9001": "localhost" is not an IP address/ })
  assert.throws(() => parseBeaconListen('70000'), (e: Error & { hint?: string }) => /0\.\.65535/.test(e.message) && /HOST:PORT/.test(e.hint ?? ''))
})
