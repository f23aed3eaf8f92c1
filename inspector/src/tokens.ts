// The access token the page uses, and the wait for a new one once the server refused it.
// The SDK asks for a token before every connection and after every 4401; when the current one
// is known to be expired or refused, the page asks the person for a new one and the
// connection waits (its unsent edits stay in the document).

import { type TokenClaims, readClaims, secondsLeft } from './token.js'

const STORAGE_KEY = 'flowai.inspector.token'

export class TokenBox {
  private value = ''
  private refused: string | null = null
  private waiters: Array<(token: string) => void> = []
  private readonly listeners = new Set<() => void>()

  constructor (private readonly storage: Storage | null) {
    this.value = storage?.getItem(STORAGE_KEY) ?? ''
  }

  get token (): string { return this.value }
  get claims (): TokenClaims | null { return readClaims(this.value) }
  /** True while the page waits for the person to enter a new token. */
  get waiting (): boolean { return this.waiters.length > 0 }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  set (token: string): void {
    this.value = token.trim()
    this.refused = null
    this.storage?.setItem(STORAGE_KEY, this.value)
    const waiters = this.waiters
    this.waiters = []
    if (this.usable(Date.now())) for (const resolve of waiters) resolve(this.value)
    else this.waiters = waiters
    this.emit()
  }

  /** The server closed with 4401 while this token was in use. */
  markRefused (): void {
    this.refused = this.value
    this.emit()
  }

  usable (nowMs: number): boolean {
    if (this.value === '' || this.value === this.refused) return false
    const claims = this.claims
    const left = claims === null ? null : secondsLeft(claims, nowMs)
    return left === null || left > 0
  }

  /** For the SDK's getToken: the token now if it may work, else once a new one is entered. */
  next (): Promise<string> {
    if (this.usable(Date.now())) return Promise.resolve(this.value)
    const promise = new Promise<string>((resolve) => this.waiters.push(resolve))
    this.emit()
    return promise
  }

  private emit (): void {
    for (const listener of [...this.listeners]) listener()
  }
}
