// Pure: what the page tells a person about REST errors, close codes and a missing server.

/** A REST failure as the page shows it. `status` 0 means the server was not reached. */
export interface ApiFailure {
  readonly status: number
  readonly code: string
  readonly message: string
}

/** The server's `{"error": {"code", "message"}}`, or a generic description of the status. */
export function apiFailure (status: number, body: unknown): ApiFailure {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const error = (body as { error: unknown }).error
    if (typeof error === 'object' && error !== null) {
      const { code, message } = error as { code?: unknown, message?: unknown }
      if (typeof code === 'string') {
        return { status, code, message: typeof message === 'string' ? message : '' }
      }
    }
  }
  return { status, code: `http_${status}`, message: `the server answered ${status}` }
}

export function unreachable (baseUrl: string, detail: string): ApiFailure {
  return {
    status: 0,
    code: 'server_unreachable',
    message: `cannot reach the server at ${baseUrl} (${detail}); is flowai serve running?`
  }
}

export function describeFailure (failure: ApiFailure): string {
  if (failure.status === 0) return `Server unreachable: ${failure.message}`
  if (failure.code === 'project_not_found') {
    return `Project not found (404 project_not_found): it was deleted or you are not a member.`
  }
  const message = failure.message === '' ? '' : `: ${failure.message}`
  return `Error ${failure.status} ${failure.code}${message}`
}

export type CloseKind = 'auth' | 'access_removed' | 'not_found' | 'permanent' | 'retrying'

export interface CloseNotice {
  readonly kind: CloseKind
  readonly text: string
}

/** What a websocket close code means to the person looking at the page. */
export function closeNotice (code: number, reason: string): CloseNotice {
  const why = reason === '' ? '' : ` (${reason})`
  switch (code) {
    case 4401:
      return { kind: 'auth', text: `Token refused or expired${why}: enter a new token to continue; unsent edits are kept.` }
    case 4403:
      return { kind: 'access_removed', text: `Access removed: you are no longer a member of this project${why}.` }
    case 4404:
      return { kind: 'not_found', text: `Project not found (4404): it does not exist or was deleted${why}.` }
    case 4400:
      return { kind: 'permanent', text: `The server refused a malformed message (4400)${why}.` }
    case 1009:
      return { kind: 'permanent', text: `A message was too big for the server (1009)${why}.` }
    case 4529:
      return { kind: 'retrying', text: `Rate limited (4529)${why}: reconnecting after a pause.` }
    case 4508:
      return { kind: 'retrying', text: `Idle connection closed (4508): reconnecting.` }
    case 1012:
      return { kind: 'retrying', text: `Server restarting (1012): reconnecting.` }
    case 1013:
      return { kind: 'retrying', text: `Server busy (1013)${why}: reconnecting.` }
    default:
      return { kind: 'retrying', text: `Connection lost (${code})${why}: reconnecting.` }
  }
}
