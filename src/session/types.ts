/** Monotonic milliseconds supplied by the caller; session/ never reads a clock. */
export type Millis = number
