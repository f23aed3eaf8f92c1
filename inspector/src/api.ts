// The REST calls the page makes. Every failure becomes an ApiError carrying the server's
// error code, or `server_unreachable` when no answer came at all.

import { type ApiFailure, apiFailure, unreachable } from './messages.js'
import type { TimelineLike } from './layout.js'

export class ApiError extends Error {
  constructor (readonly failure: ApiFailure) {
    super(`${failure.code}: ${failure.message}`)
  }
}

export interface ProjectRow {
  readonly id: string
  readonly title: string
  readonly owner_id: string
  readonly role: 'owner' | 'editor' | 'viewer'
  readonly updated_at: string
}

export interface VersionRow {
  readonly version: number
  readonly kind: string
  readonly label: string | null
  readonly created_by: string | null
  readonly restored_from: number | null
  readonly size_bytes: number
  readonly created_at: string
}

export interface VersionPreview extends VersionRow {
  readonly timeline: TimelineLike & { readonly problems: readonly unknown[] }
}

export interface JobRow {
  readonly id: string
  readonly kind: string
  readonly status: string
  readonly stage: string | null
  readonly progress: number
  readonly estimate: number
  readonly cost: number | null
  readonly created_at: string
}

export interface Credits {
  readonly balance: number
  readonly held: number
  readonly available: number
}

const REQUEST_TIMEOUT_MS = 15_000

export class Api {
  constructor (readonly baseUrl: string, private readonly token: () => string) {}

  private async call<T> (method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token()}` }
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    let response: Response
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
      })
    } catch (error) {
      throw new ApiError(unreachable(this.baseUrl, error instanceof Error ? error.message : String(error)))
    }
    const text = await response.text()
    let parsed: unknown = null
    try {
      parsed = text === '' ? null : JSON.parse(text)
    } catch {
      parsed = null
    }
    if (!response.ok) throw new ApiError(apiFailure(response.status, parsed))
    return parsed as T
  }

  listProjects (): Promise<ProjectRow[]> { return this.call('GET', '/api/projects') }
  createProject (title: string): Promise<ProjectRow> {
    return this.call('POST', '/api/projects', { title })
  }

  getProject (id: string): Promise<ProjectRow> {
    return this.call('GET', `/api/projects/${encodeURIComponent(id)}`)
  }

  listVersions (id: string): Promise<VersionRow[]> {
    return this.call('GET', `/api/projects/${encodeURIComponent(id)}/versions`)
  }

  createVersion (id: string, label: string): Promise<VersionRow> {
    return this.call('POST', `/api/projects/${encodeURIComponent(id)}/versions`, { label })
  }

  getVersion (id: string, version: number): Promise<VersionPreview> {
    return this.call('GET', `/api/projects/${encodeURIComponent(id)}/versions/${version}`)
  }

  restoreVersion (id: string, version: number): Promise<unknown> {
    return this.call('POST', `/api/projects/${encodeURIComponent(id)}/versions/${version}/restore`)
  }

  listJobs (projectId: string): Promise<JobRow[]> {
    return this.call('GET', `/api/jobs?project_id=${encodeURIComponent(projectId)}&limit=20`)
  }

  getCredits (): Promise<Credits> { return this.call('GET', '/api/credits') }
}
