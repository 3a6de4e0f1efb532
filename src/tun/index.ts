// Pure (sans-IO) packet code for the TUN bridge.
export * from './packets/checksum.js'
export * from './packets/ipv6.js'
export * from './packets/udp.js'
export * from './packets/tcp.js'
export * from './packets/icmpv6.js'
export * from './reflector.js'
export * from './dns.js'
