/**
 * Whether this client has edits the server has not yet stored (pure, fed by the connection).
 *
 * The server's `saved` message carries the state vector that is durable. An edit that inserts
 * content (every set of a map field does) advances this client's clock, so it is saved once the
 * durable state vector reaches that clock. A transaction that only deletes advances no clock
 * and no state vector can confirm it; it counts as saved once an insert made after it is
 * durable (the server stores a connection's updates in the order they arrive, and a reconnect
 * resends deletes together with everything else in one sync step).
 */

export type StateVector = Map<number, number>

export class UnsavedTracker {
  /** Own client id -> clock the durable state vector must reach. */
  private readonly pending = new Map<number, number>()
  /** A delete-only edit happened and no insert has followed it yet. */
  private deleteAwaitingInsert = false
  /** A delete-only edit is saved once this insert is. */
  private deleteBarrier: [number, number] | null = null

  get unsaved (): boolean {
    return this.pending.size > 0 || this.deleteAwaitingInsert || this.deleteBarrier !== null
  }

  /** A local transaction: `clock` is the client's clock after it (unchanged for delete-only). */
  local (clientId: number, clockBefore: number, clockAfter: number, deleted: boolean): void {
    if (clockAfter > clockBefore) {
      this.pending.set(clientId, Math.max(clockAfter, this.pending.get(clientId) ?? 0))
      if (this.deleteAwaitingInsert) {
        this.deleteBarrier = [clientId, clockAfter]
        this.deleteAwaitingInsert = false
      }
    } else if (deleted) {
      this.deleteAwaitingInsert = true
    }
  }

  /** The server's durable state vector arrived. */
  durable (stateVector: StateVector): void {
    for (const [clientId, clock] of this.pending) {
      if ((stateVector.get(clientId) ?? 0) >= clock) this.pending.delete(clientId)
    }
    if (this.deleteBarrier !== null) {
      const [clientId, clock] = this.deleteBarrier
      if ((stateVector.get(clientId) ?? 0) >= clock) this.deleteBarrier = null
    }
  }
}
