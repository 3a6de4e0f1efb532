/** The pure codecs of pilot-tun: bytes in, values out, and back. */
export * from './address.js'
export * from './header.js'
export * from './ipv6-mapping.js'
export * from './tunnel-frames.js'
export * from './beacon-messages.js'
export * from './registry-framing.js'
