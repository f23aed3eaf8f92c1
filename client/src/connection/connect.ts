/**
 * `connect()`: the official y-websocket provider, with the server's close codes, token refresh
 * and the opt-in `saved` message handled.
 *
 * The provider is told never to reconnect by itself after the server closes the socket
 * (`shouldReconnect` answers false), so every close reaches `onClosed`, which decides by close
 * code (policy.ts): stop for good, fetch a new token and resume, or back off and resume. The
 * provider reads `provider.params` each time it opens a socket, so a new token is set there
 * before `provider.connect()`.
 */

import * as decoding from 'lib0/decoding'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

import {
  type Backoff, type ConnectionStatus, DEFAULT_BACKOFF, TERMINAL_STATUSES, closeAction, retryDelayMs
} from './policy.js'
import { type StateVector, UnsavedTracker } from './unsaved.js'

/** Message type of the server's `saved` message: varbytes of the durable state vector. */
export const MESSAGE_SAVED = 100

export type Awareness = WebsocketProvider['awareness']

export interface CloseInfo {
  code: number
  reason: string
}

export interface ConnectOptions {
  /** The websocket endpoint, e.g. `wss://api.example.com/ws` (the project id is appended). */
  url: string
  projectId: string
  /** Returns a current access token; called for the first connection and after every 4401. */
  getToken: () => Promise<string> | string
  /** The document to sync (default: a new one). */
  doc?: Y.Doc
  awareness?: Awareness
  /** Ask for the server's `saved` messages (`?saved=1`), which make `unsavedChanges` exact. */
  saved?: boolean
  /** A WebSocket class for environments without one (e.g. `ws` under Node). */
  WebSocketPolyfill?: typeof WebSocket
  /** Extra query parameters for the websocket URL. */
  params?: Record<string, string>
  /** Turn off y-websocket's cross-tab BroadcastChannel sync. */
  disableBc?: boolean
  backoff?: Partial<Backoff>
  /** Consecutive 4401 closes, each with a new token, before giving up (`unauthenticated`). Default 3. */
  tokenRefreshesMax?: number
  /** Start connecting at once (default true). */
  connect?: boolean
}

export interface ConnectionEvents {
  status: (status: ConnectionStatus) => void
  /** The server's durable state vector after a commit (only with `saved: true`). */
  saved: (stateVector: StateVector) => void
  unsavedChanges: (unsaved: boolean) => void
  /** The server closed the socket (any code). */
  close: (close: CloseInfo) => void
  /** `getToken` threw or rejected. */
  tokenError: (error: unknown) => void
}

export interface Connection {
  readonly doc: Y.Doc
  readonly provider: WebsocketProvider
  readonly awareness: Awareness
  readonly status: ConnectionStatus
  /** Code and reason of the server's last close, or null before any. */
  readonly lastClose: CloseInfo | null
  /** True while local edits exist that the server has not confirmed as stored. */
  readonly unsavedChanges: boolean
  /** The last durable state vector the server sent, or null before any. */
  readonly savedStateVector: StateVector | null
  /** How many sockets have been opened so far. */
  readonly attempts: number
  /** Subscribe; returns the function that unsubscribes. */
  on: <E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]) => () => void
  off: <E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]) => void
  /** Resolves when the status is `synced`; rejects if it becomes terminal first. */
  whenSynced: () => Promise<void>
  /** Connect again now, with a new token; also resumes after `denied`, `not_found`, `unauthenticated`. */
  reconnect: () => void
  /** Close the socket and stop (and the awareness, unless it was passed in); the document is left as it is. */
  destroy: () => void
}

type Listeners = { [E in keyof ConnectionEvents]: Set<ConnectionEvents[E]> }

export function connect (options: ConnectOptions): Connection {
  return new ProjectConnection(options)
}

class ProjectConnection implements Connection {
  readonly doc: Y.Doc
  readonly provider: WebsocketProvider
  readonly awareness: Awareness
  status: ConnectionStatus = 'connecting'
  lastClose: CloseInfo | null = null
  savedStateVector: StateVector | null = null
  attempts = 0

  private readonly options: ConnectOptions
  private readonly backoff: Backoff
  private readonly tracker = new UnsavedTracker()
  private readonly listeners: Listeners = {
    status: new Set(), saved: new Set(), unsavedChanges: new Set(), close: new Set(), tokenError: new Set()
  }

  private failures = 0
  private tokenRefreshes = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private generation = 0
  private destroyed = false
  private lastUnsaved = false
  private serverClosed = false

  constructor (options: ConnectOptions) {
    this.options = options
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff }
    this.doc = options.doc ?? new Y.Doc()
    const params: Record<string, string> = { ...options.params }
    if (options.saved === true) params['saved'] = '1'
    const BaseSocket = options.WebSocketPolyfill ?? globalThis.WebSocket
    if (typeof BaseSocket !== 'function') {
      throw new TypeError('no WebSocket class here: pass WebSocketPolyfill (e.g. the `ws` package under Node)')
    }
    const connection = this
    // Counts every socket the provider opens (the provider creates them itself).
    class CountedSocket extends BaseSocket {
      constructor (url: string | URL, protocols?: string | string[]) {
        super(url, protocols)
        connection.attempts += 1
      }
    }
    this.provider = new WebsocketProvider(options.url, options.projectId, this.doc, {
      connect: false,
      params,
      WebSocketPolyfill: CountedSocket as typeof WebSocket,
      disableBc: options.disableBc ?? false,
      maxBackoffTime: this.backoff.maxMs,
      ...(options.awareness !== undefined ? { awareness: options.awareness } : {}),
      // Every close by the server goes to onClosed; only local closes reconnect by themselves.
      shouldReconnect: () => false
    })
    this.awareness = this.provider.awareness
    this.provider.messageHandlers[MESSAGE_SAVED] = (_encoder, decoder) => {
      this.onSaved(Y.decodeStateVector(decoding.readVarUint8Array(decoder)))
    }
    this.provider.on('status', this.onProviderStatus)
    this.provider.on('sync', this.onSync)
    this.provider.on('closed', this.onClosed)
    this.provider.on('connection-close', this.onConnectionClose)
    this.doc.on('afterTransaction', this.onTransaction)
    if (options.connect !== false) this.openWithNewToken()
  }

  get unsavedChanges (): boolean {
    return this.tracker.unsaved
  }

  on<E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]): () => void {
    this.listeners[event].add(listener)
    return () => this.off(event, listener)
  }

  off<E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]): void {
    this.listeners[event].delete(listener)
  }

  whenSynced (): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (status: ConnectionStatus): boolean => {
        if (status === 'synced') resolve()
        else if (TERMINAL_STATUSES.includes(status)) reject(new Error(`connection ${status}: ${this.lastClose?.reason ?? ''}`))
        else return false
        return true
      }
      if (check(this.status)) return
      const off = this.on('status', (status) => { if (check(status)) off() })
    })
  }

  reconnect (): void {
    if (this.destroyed) return
    this.cancelTimer()
    this.tokenRefreshes = 0
    this.failures = 0
    this.provider.disconnect()
    this.setStatus('connecting')
    this.openWithNewToken()
  }

  destroy (): void {
    if (this.destroyed) return
    this.destroyed = true
    this.cancelTimer()
    this.generation += 1
    this.doc.off('afterTransaction', this.onTransaction)
    this.provider.destroy()
    // The provider leaves its awareness running (it may be shared); one it made itself is ours.
    if (this.options.awareness === undefined) this.awareness.destroy()
    this.setStatus('offline')
  }

  // --- opening -----------------------------------------------------------------------------

  /** Ask for a token, then open a socket with it (unless something newer happened meanwhile). */
  private openWithNewToken (): void {
    const generation = ++this.generation
    Promise.resolve()
      .then(() => this.options.getToken())
      .then((token) => {
        if (generation !== this.generation || this.destroyed) return
        if (typeof token !== 'string' || token === '') throw new TypeError('getToken returned no token')
        this.provider.params = { ...this.provider.params, token }
        this.provider.connect()
      })
      .catch((error: unknown) => {
        if (generation !== this.generation || this.destroyed) return
        this.emit('tokenError', error)
        this.setStatus('unauthenticated')
      })
  }

  private resumeAfter (delayMs: number, newToken: boolean): void {
    this.cancelTimer()
    const generation = ++this.generation
    this.timer = setTimeout(() => {
      this.timer = null
      if (generation !== this.generation || this.destroyed) return
      this.setStatus('connecting')
      if (newToken) this.openWithNewToken()
      else this.provider.connect()
    }, delayMs)
  }

  private cancelTimer (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  // --- provider events ---------------------------------------------------------------------

  private readonly onProviderStatus = ({ status }: { status: 'connected' | 'disconnected' | 'connecting' }): void => {
    // After a close by the server, onClosed (which follows) sets the status from the code.
    if (status === 'disconnected') {
      if (!this.serverClosed) this.setStatus('offline')
    } else if (!this.provider.synced) {
      this.setStatus('connecting')
    }
  }

  private readonly onSync = (synced: boolean): void => {
    if (!synced) return
    this.failures = 0
    this.tokenRefreshes = 0
    this.setStatus('synced')
  }

  private readonly onConnectionClose = (event: CloseEvent | null): void => {
    this.serverClosed = event !== null
    if (event !== null) {
      this.lastClose = { code: event.code, reason: event.reason }
      this.emit('close', this.lastClose)
    }
  }

  private readonly onClosed = ({ code }: { code: number, reason: string }): void => {
    if (this.destroyed) return
    const action = closeAction(code)
    if (action.kind === 'stop') {
      this.setStatus(action.status)
      return
    }
    if (action.kind === 'refresh_token') {
      this.tokenRefreshes += 1
      if (this.tokenRefreshes > (this.options.tokenRefreshesMax ?? 3)) {
        this.setStatus('unauthenticated')
        return
      }
      this.setStatus('connecting')
      // The first refresh goes at once; a new token that is refused again backs off.
      const delay = this.tokenRefreshes === 1 ? 0 : retryDelayMs(this.tokenRefreshes - 2, false, this.backoff, Math.random)
      this.resumeAfter(delay, true)
      return
    }
    this.setStatus(action.status)
    const delay = retryDelayMs(this.failures, action.status === 'rate_limited', this.backoff, Math.random)
    this.failures += 1
    this.resumeAfter(delay, false)
  }

  // --- saved state ---------------------------------------------------------------------------

  private readonly onTransaction = (transaction: Y.Transaction): void => {
    if (!transaction.local) return
    const clientId = this.doc.clientID
    const before = transaction.beforeState.get(clientId) ?? 0
    const after = transaction.afterState.get(clientId) ?? 0
    this.tracker.local(clientId, before, after, transaction.deleteSet.clients.size > 0)
    this.emitUnsaved()
  }

  private onSaved (stateVector: StateVector): void {
    this.savedStateVector = stateVector
    this.tracker.durable(stateVector)
    this.emit('saved', stateVector)
    this.emitUnsaved()
  }

  private emitUnsaved (): void {
    const unsaved = this.tracker.unsaved
    if (unsaved !== this.lastUnsaved) {
      this.lastUnsaved = unsaved
      this.emit('unsavedChanges', unsaved)
    }
  }

  // --- helpers -------------------------------------------------------------------------------

  private setStatus (status: ConnectionStatus): void {
    if (status === this.status) return
    this.status = status
    this.emit('status', status)
  }

  private emit<E extends keyof ConnectionEvents>(event: E, ...args: Parameters<ConnectionEvents[E]>): void {
    for (const listener of [...this.listeners[event]]) {
      (listener as (...a: Parameters<ConnectionEvents[E]>) => void)(...args)
    }
  }
}
