/**
 * One error family for the whole project. Every error has a stable `code`
 * (`PT_<AREA>_<WHAT>`) that `--json` prints and the README lists, a message,
 * and optionally a `hint` that tells the user what to do next.
 *
 * The data path does not throw these per packet: a bad packet is dropped and
 * counted where it is parsed. Decoders throw `DecodeError`; receive loops catch
 * it and count `reason`.
 */
export class PilotError extends Error {
  readonly code: string
  readonly hint: string | undefined

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.hint = options.hint
  }

  toJSON(): { code: string; message: string; hint?: string } {
    return this.hint === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, hint: this.hint }
  }
}

/** Why a decoder refused its input. Stable strings: counters and tests key on them. */
export type DecodeReason =
  | 'short-buffer'
  | 'bad-magic'
  | 'bad-crc'
  | 'bad-length'
  | 'bad-address'
  | 'bad-port'
  | 'bad-protocol'
  | 'bad-type'
  | 'bad-value'
  | 'bad-json'
  | 'too-large'

/** Malformed bytes or text. `reason` names what was wrong. */
export class DecodeError extends PilotError {
  readonly reason: DecodeReason

  constructor(reason: DecodeReason, message: string) {
    super(`PT_PROTOCOL_${reason.toUpperCase().replace(/-/g, '_')}`, message)
    this.reason = reason
  }
}

/** Cryptographic failure: authentication failed, bad key, unsafe key file. */
export class CryptoError extends PilotError {}

/** Bad configuration or command-line input. */
export class ConfigError extends PilotError {
  constructor(message: string, hint?: string) {
    super('PT_CONFIG_INVALID', message, hint === undefined ? {} : { hint })
  }
}
