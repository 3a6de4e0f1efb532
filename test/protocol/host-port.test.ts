/** host:port text: the one parser and formatter every flag, config key and registry field goes through. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DecodeError } from '../../src/errors.js'
import { ALL_IPV4_INTERFACES, formatHostPort, parseHostPort, tryParseHostPort, type HostPortRules } from '../../src/protocol/host-port.js'

function refused(text: string, rules: HostPortRules, reason: 'bad-address' | 'bad-port', message?: RegExp): void {
  assert.throws(
    () => parseHostPort(text, rules),
    (err: unknown) => {
      assert.ok(err instanceof DecodeError, `${text}: ${String(err)}`)
      assert.equal(err.reason, reason, `${text}: ${err.message}`)
      assert.equal(err.code, reason === 'bad-port' ? 'PT_PROTOCOL_BAD_PORT' : 'PT_PROTOCOL_BAD_ADDRESS')
      if (message !== undefined) assert.match(err.message, message)
      return true
    },
    text,
  )
  assert.equal(tryParseHostPort(text, rules), null, text)
}

test('IPv4, IPv6 in brackets and host names', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 })
  assert.deepEqual(parseHostPort('[::1]:9000'), { host: '::1', port: 9000 })
  assert.deepEqual(parseHostPort('[2001:db8::7]:1'), { host: '2001:db8::7', port: 1 })
  assert.deepEqual(parseHostPort('[::ffff:10.0.0.1]:65535'), { host: '::ffff:10.0.0.1', port: 65535 })
  assert.deepEqual(parseHostPort('[fe80::1%eth0]:4000'), { host: 'fe80::1%eth0', port: 4000 })
  assert.deepEqual(parseHostPort('registry.example.net:9000'), { host: 'registry.example.net', port: 9000 })
  assert.deepEqual(parseHostPort('rendezvous:9000'), { host: 'rendezvous', port: 9000 })
  assert.deepEqual(parseHostPort('my_registry.local.:9000'), { host: 'my_registry.local.', port: 9000 })
  assert.deepEqual(parseHostPort('localhost:9000', { hosts: 'ip-or-localhost' }), { host: 'localhost', port: 9000 })
})

test('IPv6 without brackets is refused with the bracketed form as the hint', () => {
  refused('::1:9000', {}, 'bad-address', /write an IPv6 address in brackets: \[::1\]:9000/)
  refused('2001:db8::1:9001', { hosts: 'ip' }, 'bad-address', /\[2001:db8::1\]:9001/)
  refused('::1:9000', { listen: true, hosts: 'ip' }, 'bad-address')
  // An address alone is not "host:port" either way.
  refused('::1', {}, 'bad-address', /an IPv6 address needs brackets and a port: \[::1\]:PORT/)
  refused('2001:db8::1', { listen: true }, 'bad-address', /\[2001:db8::1\]:PORT/)
  // Colons that make no IPv6 address at all.
  refused('a:b:80', {}, 'bad-address', /"a:b" is not a host name or IP address/)
})

test('brackets hold an IPv6 address and nothing else', () => {
  refused('[1.2.3.4]:9000', {}, 'bad-address', /\[1\.2\.3\.4\] is not an IPv6 address/)
  refused('[example.com]:9000', {}, 'bad-address')
  refused('[]:9000', { listen: true }, 'bad-address')
  refused('[::1:9000', {}, 'bad-address', /missing "\]"/)
  refused('[::1]9000', {}, 'bad-address', /expected ":PORT" after "\]"/)
  refused('[::1]x:9000', {}, 'bad-address')
})

test('a missing port names the expected shape', () => {
  refused('1.2.3.4', {}, 'bad-port', /no port \(expected HOST:PORT\)/)
  refused('1.2.3.4:', {}, 'bad-port', /no port/)
  refused('[::1]', {}, 'bad-port', /no port/)
  refused('[::1]:', {}, 'bad-port', /no port/)
  refused('example.com', {}, 'bad-port')
  refused('', {}, 'bad-port')
  refused(':', { listen: true }, 'bad-port', /no port \(expected \[HOST\]:PORT\)/)
})

test('ports: decimal only, 1..65535 to connect to, 0..65535 to listen on', () => {
  for (const bad of ['1.2.3.4:0', '1.2.3.4:65536', '1.2.3.4:70000', '1.2.3.4:-1', '1.2.3.4:+1', '1.2.3.4:1e3', '1.2.3.4:0x10', '1.2.3.4: 80', '1.2.3.4:123456', '[::1]:x']) {
    refused(bad, {}, 'bad-port')
  }
  refused('1.2.3.4:0', {}, 'bad-port', /is not a number in 1\.\.65535/)
  assert.deepEqual(parseHostPort('1.2.3.4:0', { listen: true }), { host: '1.2.3.4', port: 0 })
  assert.deepEqual(parseHostPort('1.2.3.4:00080'), { host: '1.2.3.4', port: 80 })
  refused('1.2.3.4:65536', { listen: true }, 'bad-port', /is not a number in 0\.\.65535/)
})

test('an empty host: every IPv4 interface for a listen address, refused otherwise', () => {
  assert.deepEqual(parseHostPort(':4000', { listen: true }), { host: ALL_IPV4_INTERFACES, port: 4000 })
  assert.deepEqual(parseHostPort(':0', { listen: true, hosts: 'ip' }), { host: '0.0.0.0', port: 0 })
  refused(':4000', {}, 'bad-address', /no host/)
  refused(':4000', { hosts: 'ip' }, 'bad-address')
})

test('a bare port only where barePort allows it', () => {
  assert.deepEqual(parseHostPort('9001', { listen: true, barePort: true }), { host: '0.0.0.0', port: 9001 })
  assert.deepEqual(parseHostPort('0', { listen: true, barePort: true }), { host: '0.0.0.0', port: 0 })
  refused('70000', { listen: true, barePort: true }, 'bad-port', /0\.\.65535/)
  refused('9001', { listen: true }, 'bad-port', /no port/)
  refused('9001', {}, 'bad-port')
})

test('host kinds: IP only, IP or localhost, or names too', () => {
  refused('localhost:9000', { hosts: 'ip' }, 'bad-address', /"localhost" is not an IP address/)
  refused('example.com:9000', { hosts: 'ip-or-localhost' }, 'bad-address', /is not an IP address/)
  refused('example.com:9000', { hosts: 'ip', listen: true }, 'bad-address')
  for (const bad of ['bad host:9000', 'a/b:9000', '-lead:9000', 'trail-:9000', 'a..b:9000', `${'a'.repeat(64)}:9000`, `${'a.'.repeat(127)}ab:9000`]) {
    refused(bad, {}, 'bad-address', /is not a host name or IP address/)
  }
  assert.deepEqual(parseHostPort(`${'a'.repeat(63)}.b:1`), { host: `${'a'.repeat(63)}.b`, port: 1 })
})

test('messages name the flag and quote the text', () => {
  refused('nope', { flag: '--registry' }, 'bad-port', /^--registry "nope": no port/)
  refused('x\ny:1', { flag: '--beacon' }, 'bad-address', /^--beacon "x\\ny:1": /)
  refused('1.2.3.4', {}, 'bad-port', /^"1\.2\.3\.4": no port/)
  const long = `${'a'.repeat(300)}:1`
  assert.throws(() => parseHostPort(long), (err: Error) => err.message.length < 250)
})

test('formatHostPort brackets IPv6 only, and parseHostPort reads every format back', () => {
  assert.equal(formatHostPort('127.0.0.1', 4000), '127.0.0.1:4000')
  assert.equal(formatHostPort('2001:db8::1', 4000), '[2001:db8::1]:4000')
  assert.equal(formatHostPort('::', 0), '[::]:0')
  assert.equal(formatHostPort('beacon.example.net', 9001), 'beacon.example.net:9001')
  const cases: Array<[string, number]> = [
    ['10.0.0.1', 1],
    ['0.0.0.0', 0],
    ['::', 65535],
    ['::ffff:1.2.3.4', 80],
    ['2001:db8:0:0:0:0:0:1', 4000],
    ['fe80::1%eth0', 9000],
    ['registry.example.net', 9000],
  ]
  for (const [host, port] of cases) {
    const text = formatHostPort(host, port)
    assert.deepEqual(parseHostPort(text, { listen: true }), { host, port }, text)
  }
})

test('tryParseHostPort returns null on refusal and the value otherwise', () => {
  assert.deepEqual(tryParseHostPort('[::1]:5', { hosts: 'ip' }), { host: '::1', port: 5 })
  assert.equal(tryParseHostPort('host.example:5', { hosts: 'ip' }), null)
})
