/**
 * What the control socket can ask of the data services (the CLI's
 * send-message, send-file, inbox, received, publish, subscribe). Field names
 * follow the Go reference's `pilotctl --json` answers where it has them.
 */

export type MessageKind = 'text' | 'json' | 'binary'

export interface SendMessageResult {
  target: string
  type: MessageKind
  bytes: number
  /** The peer's answer, `ACK <TYPE> <n> bytes`. */
  ack: string
}

export interface SendFileResult {
  destination: string
  filename: string
  bytes: number
  ack: string
}

export interface InboxListResult {
  dir: string
  /** Oldest first; when `truncated`, only the newest that fit one answer. */
  messages: Array<{ bytes: number; data: string; from: string; received_at: string; type: string; data_truncated?: boolean }>
  total: number
  truncated: boolean
}

export interface ReceivedListResult {
  dir: string
  files: Array<{ name: string; bytes: number; modified: string; path: string }>
  total: number
  truncated: boolean
}

export interface PublishResult {
  target: string
  topic: string
  bytes: number
  /** Local publications: how many subscribers got it (remote brokers do not say). */
  delivered?: number
}

/** One event as streamed to the CLI. */
export interface StreamedEvent {
  topic: string
  data: string
  bytes: number
  /** The payload was longer than what one control frame carries: `data` is its start. */
  data_truncated?: boolean
}

export interface SubscribeResult {
  target: string
  topic: string
  events: number
  timeout: boolean
}

export interface SubscribeOptions {
  /** Stop after this many events (0 = no limit). */
  count: number
  /** Stop after this long (0 = no limit). */
  timeoutMs: number
}

export interface ServicesControl {
  sendMessage(target: string, type: MessageKind, data: string): Promise<SendMessageResult>
  /** `path` is absolute (the CLI resolves it); the daemon reads the file. */
  sendFile(target: string, path: string): Promise<SendFileResult>
  inboxList(): Promise<InboxListResult>
  inboxClear(): Promise<{ cleared: number }>
  receivedList(): Promise<ReceivedListResult>
  receivedClear(): Promise<{ cleared: number }>
  publish(target: string, topic: string, data: string): Promise<PublishResult>
  /** Streams events to `onEvent` until count, timeout, `signal` or the broker's end. */
  subscribe(target: string, topic: string, options: SubscribeOptions, onEvent: (e: StreamedEvent) => void, signal: AbortSignal): Promise<SubscribeResult>
}
