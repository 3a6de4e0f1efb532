/**
 * A connection's pending events: a small ring of codes for pollEvent().
 * Readable is queued once until read() drains it again.
 */
import { StreamEvent } from './stream-config.js'

const SIZE = 64 // a power of two

export class EventQueue {
  private readonly codes = new Uint8Array(SIZE)
  private head = 0
  private count = 0
  private readableQueued = false

  push(e: StreamEvent): void {
    if (this.count === SIZE) return // an unread backlog; the app polls state anyway
    this.codes[(this.head + this.count) & (SIZE - 1)] = e
    this.count++
  }

  /** Readable, unless it is still unanswered by a read() that drained everything. */
  pushReadable(): void {
    if (this.readableQueued) return
    this.readableQueued = true
    this.push(StreamEvent.Readable)
  }

  /** read() drained the in-order data: the next arrival signals Readable again. */
  readableDrained(): void {
    this.readableQueued = false
  }

  /** The oldest event, StreamEvent.None when there is none. */
  pop(): StreamEvent {
    if (this.count === 0) return StreamEvent.None
    const e = this.codes[this.head]! as StreamEvent
    this.head = (this.head + 1) & (SIZE - 1)
    this.count--
    return e
  }
}
