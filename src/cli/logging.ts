/**
 * winston behind the `Logger` interface: readable lines on a terminal, JSON
 * lines when stderr is not a TTY (systemd, pipes) or when asked.
 */
import winston from 'winston'
import type { LogFields, Logger } from '../logger.js'

export type LogFormat = 'auto' | 'text' | 'json'
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export function createCliLogger(level: LogLevel = 'info', format: LogFormat = 'auto'): Logger {
  const json = format === 'json' || (format === 'auto' && !process.stderr.isTTY)
  const logger = winston.createLogger({
    level,
    format: json
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
          winston.format.printf(({ timestamp, level: lvl, message, ...rest }) => {
            const extra = Object.entries(rest)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ')
            return `${String(timestamp)} ${lvl.padEnd(5)} ${String(message)}${extra ? ` ${extra}` : ''}`
          }),
        ),
    transports: [new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] })],
  })
  return wrap(logger, level === 'debug')
}

function wrap(w: winston.Logger, debugEnabled: boolean): Logger {
  return {
    debug: (m: string, f?: LogFields) => void w.debug(m, f),
    info: (m: string, f?: LogFields) => void w.info(m, f),
    warn: (m: string, f?: LogFields) => void w.warn(m, f),
    error: (m: string, f?: LogFields) => void w.error(m, f),
    child: (f: LogFields) => wrap(w.child(f), debugEnabled),
    debugEnabled,
  }
}
