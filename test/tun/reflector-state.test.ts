// The reflector's per-flow TCP flags and the timeouts they select.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DEFAULT_REFLECTOR_TIMEOUTS,
  F_FIN_APP,
  F_FIN_DAEMON,
  F_LIVE,
  F_RST,
  F_SYN_APP,
  F_SYN_DAEMON,
  flowFlagsAfter,
  flowTimeout,
  isFlowClosed,
} from '../../src/tun/reflector-state.js'
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../../src/tun/packets/tcp.js'

const T = { synMs: 1, establishedMs: 2, finWaitMs: 3, timeWaitMs: 4, resetMs: 5, quarantineMs: 6 }
const app = (f: number, tcp: number) => flowFlagsAfter(f, tcp, F_SYN_APP, F_FIN_APP)
const daemon = (f: number, tcp: number) => flowFlagsAfter(f, tcp, F_SYN_DAEMON, F_FIN_DAEMON)

test('each side records its own SYN and FIN; RST from either side is one flag; ACK and PSH change nothing', () => {
  assert.equal(app(F_LIVE, TCP_SYN), F_LIVE | F_SYN_APP)
  assert.equal(daemon(F_LIVE, TCP_SYN | TCP_ACK), F_LIVE | F_SYN_DAEMON)
  assert.equal(app(F_LIVE, TCP_FIN | TCP_ACK), F_LIVE | F_FIN_APP)
  assert.equal(daemon(F_LIVE, TCP_FIN), F_LIVE | F_FIN_DAEMON)
  assert.equal(app(F_LIVE, TCP_RST), F_LIVE | F_RST)
  assert.equal(daemon(F_LIVE, TCP_RST | TCP_ACK), F_LIVE | F_RST)
  assert.equal(app(F_LIVE | F_SYN_APP, TCP_ACK | TCP_PSH), F_LIVE | F_SYN_APP)
  // Flags only accumulate.
  assert.equal(app(F_LIVE | F_SYN_DAEMON | F_FIN_DAEMON, TCP_ACK), F_LIVE | F_SYN_DAEMON | F_FIN_DAEMON)
})

test('the timeout follows the flow: SYN, established, one FIN, both FINs, reset', () => {
  let f = F_LIVE
  assert.equal(flowTimeout(f, T), T.synMs)
  f = app(f, TCP_SYN)
  assert.equal(flowTimeout(f, T), T.synMs, 'one SYN is not established')
  f = daemon(f, TCP_SYN | TCP_ACK)
  assert.equal(flowTimeout(f, T), T.establishedMs)
  f = app(f, TCP_FIN | TCP_ACK)
  assert.equal(flowTimeout(f, T), T.finWaitMs)
  assert.equal(isFlowClosed(f), false)
  f = daemon(f, TCP_FIN | TCP_ACK)
  assert.equal(flowTimeout(f, T), T.timeWaitMs)
  assert.equal(isFlowClosed(f), true)
  assert.equal(flowTimeout(app(f, TCP_RST), T), T.resetMs, 'an RST wins over everything')
  assert.equal(flowTimeout(F_LIVE | F_RST | F_SYN_APP | F_SYN_DAEMON, T), T.resetMs)
})

test('closed means reset or both FINs; a FIN from only one side (either one) is not closed', () => {
  assert.equal(isFlowClosed(F_LIVE | F_RST), true)
  assert.equal(isFlowClosed(F_LIVE | F_FIN_APP | F_FIN_DAEMON), true)
  assert.equal(isFlowClosed(F_LIVE | F_FIN_APP), false)
  assert.equal(isFlowClosed(F_LIVE | F_FIN_DAEMON), false)
  assert.equal(isFlowClosed(F_LIVE | F_SYN_APP | F_SYN_DAEMON), false)
})

test('default timeouts: established idle at least RFC 5382 REQ-5 (2 h 4 min), frozen', () => {
  assert.ok(DEFAULT_REFLECTOR_TIMEOUTS.establishedMs >= 124 * 60_000)
  assert.ok(Object.isFrozen(DEFAULT_REFLECTOR_TIMEOUTS))
  assert.ok(DEFAULT_REFLECTOR_TIMEOUTS.resetMs < DEFAULT_REFLECTOR_TIMEOUTS.synMs)
})
