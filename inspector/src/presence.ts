// Pure: awareness states split into people and running jobs. Awareness is written by
// clients, so every field is checked; an entry of the wrong shape is skipped.

export interface Collaborator {
  readonly clientId: number
  readonly userId: string
  readonly name: string
  readonly color: string
  readonly selection: string | null
  readonly self: boolean
}

export interface JobProgress {
  readonly clientId: number
  readonly id: string
  readonly kind: string
  readonly userId: string
  readonly status: string
  readonly progress: number
  readonly stage: string | null
}

export interface Presence {
  readonly collaborators: readonly Collaborator[]
  readonly jobs: readonly JobProgress[]
}

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#800000']
const COLOR_RE = /^#[0-9a-fA-F]{6}$/

/** A stable colour per user id, so everyone sees the same colour for the same person. */
export function colorFor (userId: string): string {
  let hash = 0
  for (let i = 0; i < userId.length; i++) hash = (hash * 31 + userId.charCodeAt(i)) >>> 0
  return PALETTE[hash % PALETTE.length] ?? '#4363d8'
}

function asRecord (value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null
}

function asString (value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= 200 ? value : null
}

function readJob (clientId: number, value: unknown): JobProgress | null {
  const job = asRecord(value)
  if (job === null) return null
  const id = asString(job.id)
  if (id === null) return null
  const progress = typeof job.progress === 'number' && Number.isFinite(job.progress)
    ? Math.min(1, Math.max(0, job.progress))
    : 0
  return {
    clientId,
    id,
    kind: asString(job.kind) ?? 'job',
    userId: asString(job.user_id) ?? '',
    status: asString(job.status) ?? 'running',
    progress,
    stage: asString(job.stage)
  }
}

function readUser (clientId: number, state: Record<string, unknown>, selfId: number): Collaborator | null {
  const user = asRecord(state.user)
  if (user === null) return null
  const userId = asString(user.id) ?? asString(user.name)
  if (userId === null) return null
  const color = typeof user.color === 'string' && COLOR_RE.test(user.color) ? user.color : colorFor(userId)
  return {
    clientId,
    userId,
    name: asString(user.name) ?? userId,
    color,
    selection: asString(state.selection),
    self: clientId === selfId
  }
}

export function splitPresence (states: ReadonlyMap<number, unknown>, selfId: number): Presence {
  const collaborators: Collaborator[] = []
  const jobs: JobProgress[] = []
  for (const [clientId, raw] of states) {
    const state = asRecord(raw)
    if (state === null) continue
    if ('job' in state) {
      const job = readJob(clientId, state.job)
      if (job !== null) jobs.push(job)
      continue
    }
    const person = readUser(clientId, state, selfId)
    if (person !== null) collaborators.push(person)
  }
  collaborators.sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
  jobs.sort((a, b) => a.id.localeCompare(b.id))
  return { collaborators, jobs }
}
