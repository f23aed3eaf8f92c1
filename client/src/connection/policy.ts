/**
 * What the client does after the server closes its socket (pure; the README's close-code table).
 *
 * Permanent refusals stop for good: 4403 (not a member), 4404 (no such project), 4400 (a message
 * the server could not parse) and 1009 (a message over the size limit) would fail the same way
 * again. 4401 (token missing, invalid, expired or revoked) fetches a new token and resumes.
 * Everything else (4508 idle, 4529 rate limited, 1011, 1012, 1013, a dropped network) backs off
 * and resumes.
 */

export type ConnectionStatus =
  | 'connecting'
  | 'synced'
  | 'offline'
  | 'rate_limited'
  | 'denied'
  | 'not_found'
  | 'unauthenticated'

/** Statuses after which the connection stays closed until `reconnect()`. */
export const TERMINAL_STATUSES: readonly ConnectionStatus[] = ['denied', 'not_found', 'unauthenticated']

export const CLOSE_MESSAGE_TOO_BIG = 1009
export const CLOSE_MALFORMED = 4400
export const CLOSE_NOT_AUTHENTICATED = 4401
export const CLOSE_NOT_A_MEMBER = 4403
export const CLOSE_NO_SUCH_PROJECT = 4404
export const CLOSE_IDLE = 4508
export const CLOSE_RATE_LIMITED = 4529

export type CloseAction =
  | { kind: 'stop', status: 'denied' | 'not_found' }
  | { kind: 'refresh_token' }
  | { kind: 'retry', status: 'rate_limited' | 'offline' }

export function closeAction (code: number): CloseAction {
  if (code === CLOSE_NOT_AUTHENTICATED) return { kind: 'refresh_token' }
  if (code === CLOSE_NO_SUCH_PROJECT) return { kind: 'stop', status: 'not_found' }
  // 4403, 4400, 1009 and any other 44xx: the server decided; the same request fails again.
  if (code === CLOSE_MESSAGE_TOO_BIG || (code >= 4400 && code < 4500)) return { kind: 'stop', status: 'denied' }
  if (code === CLOSE_RATE_LIMITED) return { kind: 'retry', status: 'rate_limited' }
  return { kind: 'retry', status: 'offline' }
}

export interface Backoff {
  /** First delay after an ordinary close; doubles per failed attempt. Default 100. */
  initialMs: number
  /** Largest delay after an ordinary close. Default 2500 (as y-websocket). */
  maxMs: number
  /** First delay after 4529; doubles per failed attempt. Default 1000. */
  rateLimitedInitialMs: number
  /** Largest delay after 4529. Default 10000. */
  rateLimitedMaxMs: number
}

export const DEFAULT_BACKOFF: Backoff = {
  initialMs: 100,
  maxMs: 2500,
  rateLimitedInitialMs: 1000,
  rateLimitedMaxMs: 10000
}

/**
 * Delay before attempt `failures` (0 for the first retry) with "equal jitter": half fixed, half
 * random, so clients that a restart or a rate limit closed at once do not return at once.
 */
export function retryDelayMs (failures: number, rateLimited: boolean, backoff: Backoff, random: () => number): number {
  const initial = rateLimited ? backoff.rateLimitedInitialMs : backoff.initialMs
  const max = rateLimited ? backoff.rateLimitedMaxMs : backoff.maxMs
  const ceiling = Math.min(max, initial * 2 ** Math.min(failures, 30))
  return ceiling / 2 + (ceiling / 2) * random()
}
