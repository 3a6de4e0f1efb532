/** `pilot-tun address TARGET`: converts between a Pilot address and its mapped IPv6 address, offline. */
import type { CommandModule } from 'yargs'
import { formatAddress, parseAddress, type PilotAddress } from '../../protocol/address.js'
import {
  DEFAULT_OVERLAY_PREFIX_TEXT,
  classifyOverlayIpv6,
  mapIpv6ToPilot,
  parseIpv6,
  parseOverlayPrefix,
  pilotToIpv6Text,
} from '../../protocol/ipv6-mapping.js'
import { DecodeError, PilotError } from '../../errors.js'
import { formatFields, printResult } from '../output.js'

interface AddressArgs {
  target: string
  prefix: string
  json: boolean
}

export const addressCommand: CommandModule<object, AddressArgs> = {
  command: 'address <target>',
  describe: 'convert a Pilot address (N:NNNN.HHHH.LLLL) to its mapped IPv6 address, or back',
  builder: (y) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'Pilot address or IPv6 address' })
      .option('prefix', { type: 'string', default: DEFAULT_OVERLAY_PREFIX_TEXT, describe: 'overlay IPv6 prefix (/48)' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
  handler: (args) => {
    const prefix = parseOverlayPrefix(args.prefix)
    const addr = args.target.includes('.') && !args.target.includes('::') ? parsePilot(args.target) : fromIpv6(args.target, prefix)
    const result = {
      address: formatAddress(addr),
      ipv6: pilotToIpv6Text(addr, prefix),
      network_id: addr.network,
      node_id: addr.node,
    }
    printResult(args, result, (r) =>
      formatFields([['address', r.address], ['ipv6', r.ipv6], ['network', r.network_id], ['node', r.node_id]]),
    )
  },
}

function parsePilot(text: string): PilotAddress {
  try {
    return parseAddress(text)
  } catch (err) {
    if (err instanceof DecodeError) {
      throw new PilotError(err.code, err.message, { hint: 'a Pilot address looks like 0:0000.0000.002A (network:NNNN.HHHH.LLLL)' })
    }
    throw err
  }
}

function fromIpv6(text: string, prefix: ReturnType<typeof parseOverlayPrefix>): PilotAddress {
  const bytes = parseIpv6(text)
  const kind = classifyOverlayIpv6(bytes, prefix)
  if (kind === 'outside-prefix') {
    throw new PilotError('PT_ADDRESS_OUTSIDE_PREFIX', `${text} is not inside the overlay prefix ${prefix.text}`, {
      hint: 'mapped addresses look like fd50:494c:4f54::2a; pass --prefix if your network uses another one',
    })
  }
  const addr = mapIpv6ToPilot(bytes, prefix)
  if (kind === 'not-a-node' || addr === null) {
    throw new PilotError('PT_ADDRESS_NOT_A_NODE', `${text} is inside the overlay prefix but is not a node address`, {
      hint: 'bits 64..95 of a node address are zero (prefix:NNNN:0:0:HHHH:LLLL)',
    })
  }
  return addr
}
