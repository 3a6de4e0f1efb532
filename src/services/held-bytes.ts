/**
 * A bound on the bytes of partial frames that all the connections of one
 * service hold in their decoders together: a peer that trickles headers on
 * many connections cannot make the node buffer without limit.
 */
export class HeldBytesBudget {
  private total = 0

  constructor(private readonly max: number) {}

  /** Bytes held now, all connections together. */
  get held(): number {
    return this.total
  }

  /** One connection's part of the budget. */
  share(): HeldBytesShare {
    return new HeldBytesShare(this)
  }

  /** @internal adds `delta`; false when the total is now over the bound. */
  add(delta: number): boolean {
    this.total += delta
    return this.total <= this.max
  }
}

export class HeldBytesShare {
  private held = 0

  constructor(private readonly budget: HeldBytesBudget) {}

  /** This connection's decoder now holds `bytes`; false when the service as a whole is over its bound. */
  set(bytes: number): boolean {
    const within = this.budget.add(bytes - this.held)
    this.held = bytes
    return within
  }

  /** The connection is gone: its bytes no longer count. */
  release(): void {
    this.set(0)
  }
}
