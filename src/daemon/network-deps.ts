/**
 * The registry-side pieces the daemon's network commands use, in one place
 * (issue 13): the audit chain check and the invite text form. They live in
 * src/registry/ (audit-chain.ts, invite-text.ts); this module is the one
 * seam between them and the daemon.
 */
export { verifyAuditChain } from '../registry/audit-chain.js'
export { decodeInviteText, encodeInviteText } from '../registry/invite-text.js'
