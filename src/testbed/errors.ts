/** Typed errors of the network-namespace test bed (src/testbed/). */
import { PilotError } from '../errors.js'

export const TestbedErrorCode = {
  /** Not running as root (namespaces, veths and nftables need CAP_NET_ADMIN). */
  NOT_ROOT: 'PT_TESTBED_NOT_ROOT',
  /** A required tool (ip, nft, conntrack, sysctl) is not installed. */
  TOOL_MISSING: 'PT_TESTBED_TOOL_MISSING',
  /** The topology spec is invalid (names, NAT kinds, ports, sizes). */
  BAD_SPEC: 'PT_TESTBED_BAD_SPEC',
  /** A command run to build or drive the test bed exited non-zero. */
  COMMAND_FAILED: 'PT_TESTBED_COMMAND_FAILED',
  /** A command did not finish in time. */
  TIMEOUT: 'PT_TESTBED_TIMEOUT',
  /** The node name is not part of this topology. */
  UNKNOWN_NODE: 'PT_TESTBED_UNKNOWN_NODE',
  /** A value (loss, duplication, NAT kind) is out of range. */
  BAD_VALUE: 'PT_TESTBED_BAD_VALUE',
  /** The topology was destroyed. */
  DESTROYED: 'PT_TESTBED_DESTROYED',
  /** No test bed with that id (attach, down --id). */
  NOT_FOUND: 'PT_TESTBED_NOT_FOUND',
} as const
export type TestbedErrorCode = (typeof TestbedErrorCode)[keyof typeof TestbedErrorCode]

export class TestbedError extends PilotError {
  declare readonly code: TestbedErrorCode

  constructor(code: TestbedErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options)
  }
}
