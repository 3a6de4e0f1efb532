// Daemon option text → endpoints: the shared host:port rules, refused as
// PT_CONFIG_INVALID naming the option, with an example in the hint.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { ConfigError } from '../../src/errors.js'
import { formatUdpEndpoint, parseHostPortOption, parseListenOption, parsePrefixOption, readPackageVersion, resolveBeaconOption } from '../../src/daemon/options.js'

function configError(fn: () => unknown, message: RegExp, hint: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err))
    assert.equal(err.code, 'PT_CONFIG_INVALID')
    assert.match(err.message, message)
    assert.match(err.hint ?? '', hint)
    return true
  })
}

test('--registry / --beacon: a host name or IP with a port in 1..65535', () => {
  assert.deepEqual(parseHostPortOption('registry.example.net:9000', '--registry'), { host: 'registry.example.net', port: 9000 })
  assert.deepEqual(parseHostPortOption('[2001:db8::1]:9000', '--registry'), { host: '2001:db8::1', port: 9000 })
  configError(() => parseHostPortOption('registry.example.net', '--registry'), /^--registry "registry\.example\.net": no port/, /for example --registry 127\.0\.0\.1:9000/)
  configError(() => parseHostPortOption(':9000', '--beacon'), /^--beacon ":9000": no host/, /--beacon/)
  configError(() => parseHostPortOption('1.2.3.4:0', '--beacon'), /1\.\.65535/, /--beacon/)
  configError(() => parseHostPortOption('2001:db8::1:9000', '--registry'), /\[2001:db8::1\]:9000/, /--registry/)
})

test('--listen: an IP or nothing (every IPv4 address) with a port in 0..65535', () => {
  assert.deepEqual(parseListenOption(':4000'), { host: '0.0.0.0', port: 4000 })
  assert.deepEqual(parseListenOption('127.0.0.1:0'), { host: '127.0.0.1', port: 0 })
  assert.deepEqual(parseListenOption('[::]:4000'), { host: '::', port: 4000 })
  for (const bad of ['4000', 'localhost:4000', '127.0.0.1:65536', '::1:4000', '']) {
    configError(() => parseListenOption(bad), /^--listen /, /for example --listen :4000/)
  }
})

test('the beacon option is looked up once (IPv4 first); IP literals are taken as they are', async () => {
  assert.deepEqual(await resolveBeaconOption('127.0.0.1:9001'), { host: '127.0.0.1', port: 9001 })
  assert.deepEqual(await resolveBeaconOption('[::1]:9001'), { host: '::1', port: 9001 })
  assert.deepEqual(await resolveBeaconOption('localhost:9001'), { host: '127.0.0.1', port: 9001 })
  await assert.rejects(resolveBeaconOption('no-such-host.invalid:9001'), { code: 'PT_CONFIG_INVALID', message: /cannot resolve beacon host no-such-host\.invalid/ })
  await assert.rejects(resolveBeaconOption('9001'), { code: 'PT_CONFIG_INVALID', message: /^--beacon "9001"/ })
})

test('formatUdpEndpoint brackets IPv6; the package version comes from package.json', async () => {
  assert.equal(formatUdpEndpoint({ host: '::1', port: 4000 }), '[::1]:4000')
  assert.equal(formatUdpEndpoint({ host: '10.0.0.1', port: 4000 }), '10.0.0.1:4000')
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  assert.equal(await readPackageVersion(), pkg.version)
})

test('--prefix: one /48 for the daemon and its TUN; default fd50:494c:4f54::/48; a bad or conflicting one is refused', () => {
  assert.equal(parsePrefixOption({}).text, 'fd50:494c:4f54::/48')
  assert.equal(parsePrefixOption({ prefix: 'fd12:3456:789a::/48' }).text, 'fd12:3456:789a::/48')
  const tun = { prefix: 'fd12:3456:789a::/48' }
  assert.equal(parsePrefixOption({ tun }).text, 'fd12:3456:789a::/48', 'the TUN prefix alone is the daemon prefix')
  assert.equal(parsePrefixOption({ prefix: 'FD12:3456:789A:0::/48', tun }).text, 'fd12:3456:789a::/48', 'the same prefix written another way')
  configError(() => parsePrefixOption({ prefix: 'fd12::/64' }), /--prefix/, /\/48/)
  configError(() => parsePrefixOption({ prefix: 'nonsense' }), /--prefix/, /\/48/)
  configError(() => parsePrefixOption({ prefix: 'fd50:494c:4f54::/48', tun }), /differs/, /once/)
})
