// The inspector page: wires the REST API, the SDK session and the DOM together.

import type { ConnectionStatus, Timeline } from '@flowai/client'

import { Api, ApiError, type Credits, type JobRow, type ProjectRow, type VersionPreview, type VersionRow } from './api.js'
import { byId, h, replace } from './dom.js'
import { formatMs } from './layout.js'
import { type CloseNotice, closeNotice, describeFailure } from './messages.js'
import type { Presence } from './presence.js'
import { Session } from './session.js'
import { secondsLeft } from './token.js'
import { TokenBox } from './tokens.js'
import { renderTimeline } from './view/timelineView.js'

const JOBS_POLL_MS = 5_000
const CREDITS_POLL_MS = 15_000
const VERSIONS_DEBOUNCE_MS = 1_500
const TRACK_KINDS = ['video', 'audio', 'subtitle', 'overlay'] as const
const CLIP_KINDS = ['video', 'audio', 'image', 'subtitle', 'title'] as const
type TrackKind = typeof TRACK_KINDS[number]
type ClipKind = typeof CLIP_KINDS[number]

interface State {
  projects: ProjectRow[]
  project: ProjectRow | null
  session: Session | null
  status: ConnectionStatus | null
  unsaved: boolean
  timeline: Timeline | null
  presence: Presence
  versions: VersionRow[]
  preview: VersionPreview | null
  jobs: JobRow[]
  credits: Credits | null
  selected: string | null
  notice: CloseNotice | null
  pxPerSecond: number
}

const tokens = new TokenBox(safeStorage())
const api = new Api(location.origin, () => tokens.token)
const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`
const state: State = {
  projects: [],
  project: null,
  session: null,
  status: null,
  unsaved: false,
  timeline: null,
  presence: { collaborators: [], jobs: [] },
  versions: [],
  preview: null,
  jobs: [],
  credits: null,
  selected: null,
  notice: null,
  pxPerSecond: 40
}
let versionsTimer: ReturnType<typeof setTimeout> | null = null
let pollTimers: Array<ReturnType<typeof setInterval>> = []

function safeStorage (): Storage | null {
  try {
    return window.sessionStorage
  } catch {
    return null
  }
}

// --- messages --------------------------------------------------------------------------------

function showError (error: unknown): void {
  const el = byId('error')
  const text = error instanceof ApiError
    ? describeFailure(error.failure)
    : `Error: ${error instanceof Error ? error.message : String(error)}`
  el.dataset.code = error instanceof ApiError ? error.failure.code : 'client_error'
  replace(el, h('span', {}, text), h('button', { type: 'button', class: 'dismiss', onclick: () => { el.hidden = true } }, '×'))
  el.hidden = false
}

function clearError (): void {
  byId('error').hidden = true
}

/** Runs a REST action; a failure is shown, and a 404 of the open project closes it. */
async function attempt<T> (action: () => Promise<T>): Promise<T | undefined> {
  try {
    const value = await action()
    return value
  } catch (error) {
    showError(error)
    if (error instanceof ApiError && error.failure.code === 'project_not_found' && state.project !== null) {
      setNotice({ kind: 'not_found', text: describeFailure(error.failure) })
    }
    return undefined
  }
}

function setNotice (notice: CloseNotice | null): void {
  state.notice = notice
  renderNotice()
}

// --- token -----------------------------------------------------------------------------------

function renderToken (): void {
  const claims = tokens.claims
  const info = byId('token-info')
  const whoami = byId('whoami')
  if (tokens.token === '') {
    info.textContent = 'No token yet.'
    whoami.textContent = ''
    return
  }
  if (claims === null) {
    info.textContent = 'This does not look like a JWT; the server will decide.'
    whoami.textContent = ''
    return
  }
  const left = secondsLeft(claims, Date.now())
  whoami.textContent = claims.sub
  info.textContent = `User ${claims.sub}; ` + (left === null
    ? 'no expiry.'
    : left > 0 ? `expires in ${Math.round(left)} s.` : 'expired.')
  if (tokens.waiting) {
    info.textContent += ' The connection waits for a new token: paste one above.'
  }
}

function applyToken (value: string): void {
  const hadProject = state.project
  tokens.set(value)
  clearError()
  if (state.notice?.kind === 'auth') setNotice(null)
  void refreshProjects()
  void refreshCredits()
  // A different user: the open connection belongs to the previous one.
  const session = state.session
  if (session !== null && hadProject !== null && tokens.claims !== null &&
      tokens.claims.sub !== session.options.userId) {
    openProject(hadProject.id)
    return
  }
  // The SDK gave up after repeated refusals: a new token starts it again.
  if (session !== null && session.conn.status === 'unauthenticated') session.conn.reconnect()
  const wanted = projectFromHash()
  if (state.project === null && wanted !== null) openProject(wanted)
}

// --- projects --------------------------------------------------------------------------------

async function refreshProjects (): Promise<void> {
  if (tokens.token === '') return
  const projects = await attempt(() => api.listProjects())
  if (projects === undefined) return
  state.projects = projects
  renderProjects()
}

function renderProjects (): void {
  const list = byId('project-list')
  if (state.projects.length === 0) {
    replace(list, h('li', { class: 'hint' }, tokens.token === '' ? 'Enter a token to list projects.' : 'No projects.'))
    return
  }
  replace(list, ...state.projects.map((p) => h('li', {},
    h('button', {
      type: 'button',
      class: p.id === state.project?.id ? 'project current' : 'project',
      'data-testid': 'project-item',
      'data-project-id': p.id,
      // Clicking the open project again reconnects it (after access was given back, say).
      onclick: () => {
        if (projectFromHash() === p.id) openProject(p.id)
        else location.hash = `project=${p.id}`
      }
    }, p.title, h('span', { class: 'role' }, p.role)))))
}

function projectFromHash (): string | null {
  const match = /(?:^#|&)project=([0-9a-fA-F-]{36})/.exec(location.hash)
  return match?.[1] ?? null
}

function closeProject (): void {
  state.session?.destroy()
  state.session = null
  state.project = null
  state.status = null
  state.timeline = null
  state.unsaved = false
  state.versions = []
  state.preview = null
  state.jobs = []
  state.selected = null
  state.presence = { collaborators: [], jobs: [] }
  for (const timer of pollTimers) clearInterval(timer)
  pollTimers = []
  byId('project').hidden = true
  renderAll()
}

function openProject (projectId: string): void {
  closeProject()
  setNotice(null)
  clearError()
  const claims = tokens.claims
  if (tokens.token === '' || claims === null) {
    setNotice({ kind: 'auth', text: 'Enter a token first.' })
    return
  }
  void attempt(() => api.getProject(projectId)).then((project) => {
    if (project === undefined || projectFromHash() !== projectId) return
    state.project = project
    byId('project').hidden = false
    state.session = new Session({
      wsUrl,
      projectId,
      userId: claims.sub,
      getToken: () => tokens.next(),
      events: {
        timeline: (timeline) => {
          state.timeline = timeline
          renderTimelineView()
          scheduleVersions()
        },
        presence: (presence) => {
          const before = jobKey(state.presence)
          state.presence = presence
          renderPresence()
          renderTimelineView()
          if (jobKey(presence) !== before) {
            void refreshJobs()
            void refreshCredits()
          }
        },
        status: (status) => {
          state.status = status
          if (status === 'synced' && state.notice?.kind !== 'access_removed') setNotice(null)
          renderStatus()
        },
        unsaved: (unsaved) => {
          state.unsaved = unsaved
          renderStatus()
        },
        close: onClose
      }
    })
    state.status = state.session.conn.status
    renderAll()
    void refreshVersions()
    void refreshJobs()
    pollTimers = [
      setInterval(() => { void refreshJobs() }, JOBS_POLL_MS),
      setInterval(() => { void refreshCredits() }, CREDITS_POLL_MS)
    ]
  })
}

function onClose (code: number, reason: string): void {
  const notice = closeNotice(code, reason)
  if (notice.kind === 'auth') tokens.markRefused()
  setNotice(notice)
  if (notice.kind === 'access_removed' || notice.kind === 'not_found') void refreshProjects()
}

function jobKey (presence: Presence): string {
  return presence.jobs.map((j) => `${j.id}:${j.status}`).join(',')
}

// --- versions, jobs, credits ------------------------------------------------------------------

function scheduleVersions (): void {
  if (versionsTimer !== null) clearTimeout(versionsTimer)
  versionsTimer = setTimeout(() => { versionsTimer = null; void refreshVersions() }, VERSIONS_DEBOUNCE_MS)
}

async function refreshVersions (): Promise<void> {
  const project = state.project
  if (project === null) return
  const versions = await attempt(() => api.listVersions(project.id))
  if (versions === undefined || state.project?.id !== project.id) return
  state.versions = versions
  renderVersions()
}

async function refreshJobs (): Promise<void> {
  const project = state.project
  if (project === null || tokens.token === '') return
  try {
    const jobs = await api.listJobs(project.id)
    if (state.project?.id !== project.id) return
    state.jobs = jobs
  } catch (error) {
    // A server without job workers answers 503 jobs_unavailable: say so in the list.
    state.jobs = []
    if (!(error instanceof ApiError && error.failure.code === 'jobs_unavailable')) showError(error)
  }
  renderJobs()
}

async function refreshCredits (): Promise<void> {
  if (tokens.token === '') return
  try {
    state.credits = await api.getCredits()
  } catch {
    state.credits = null
  }
  renderCredits()
}

async function previewVersion (version: number): Promise<void> {
  const project = state.project
  if (project === null) return
  const preview = await attempt(() => api.getVersion(project.id, version))
  if (preview === undefined) return
  state.preview = preview
  renderPreview()
}

async function restoreVersion (version: number): Promise<void> {
  const project = state.project
  if (project === null) return
  const done = await attempt(() => api.restoreVersion(project.id, version))
  if (done === undefined) return
  state.preview = null
  renderPreview()
  await refreshVersions()
}

// --- rendering -------------------------------------------------------------------------------

const STATUS_TEXT: Record<ConnectionStatus, string> = {
  connecting: 'Connecting…',
  synced: 'Live',
  offline: 'Offline: reconnecting',
  rate_limited: 'Rate limited: waiting',
  denied: 'Access removed',
  not_found: 'Not found',
  unauthenticated: 'Token refused'
}

function renderStatus (): void {
  const pill = byId('conn-status')
  const saved = byId('saved-state')
  const status = state.status
  if (status === null) {
    pill.hidden = true
    saved.hidden = true
    return
  }
  pill.hidden = false
  pill.dataset.status = status
  const waiting = tokens.waiting && status !== 'synced'
  pill.textContent = waiting ? 'Waiting for a new token' : STATUS_TEXT[status]
  pill.className = `pill status-${status}`
  saved.hidden = false
  // "Saved" only when nothing local waits for the server's durable ack (type 100).
  const label = state.unsaved
    ? (status === 'synced' ? 'Unsaved changes' : 'Unsaved changes (not sent)')
    : (status === 'synced' || state.session?.conn.savedStateVector != null ? 'Saved' : 'Not synced yet')
  saved.textContent = label
  saved.dataset.state = state.unsaved ? 'unsaved' : label === 'Saved' ? 'saved' : 'pending'
  saved.className = `pill saved-${saved.dataset.state}`
  // A viewer's edits are refused, and after access removed or not found nothing is sent.
  const readOnly = state.project?.role === 'viewer' || status === 'denied' || status === 'not_found'
  for (const form of ['add-track-form', 'add-clip-form', 'move-clip-form']) {
    byId(form).classList.toggle('disabled', readOnly)
  }
}

function renderNotice (): void {
  const el = byId('notice')
  const notice = state.notice
  el.hidden = notice === null
  if (notice === null) return
  el.dataset.kind = notice.kind
  el.className = `notice notice-${notice.kind}`
  el.textContent = notice.text
}

function remoteSelections (): Map<string, string[]> {
  const map = new Map<string, string[]>()
  for (const person of state.presence.collaborators) {
    if (person.self || person.selection === null) continue
    map.set(person.selection, [...(map.get(person.selection) ?? []), person.color])
  }
  return map
}

function renderTimelineView (): void {
  const timeline = state.timeline
  const session = state.session
  const project = state.project
  if (timeline === null || session === null || project === null) return
  byId('project-title').textContent = timeline.project.title === '' ? project.title : timeline.project.title
  byId('project-role').textContent = `${project.role}${project.role === 'viewer' ? ' (read-only)' : ''} · ` +
    `${plural(timeline.tracks.length, 'track')} · ${plural(timeline.clips.length, 'clip')} · ${timeline.project.fps} fps`
  const editable = project.role !== 'viewer'
  renderTimeline(byId('timeline'), timeline, {
    pxPerSecond: state.pxPerSecond,
    selected: state.selected,
    remoteSelections: remoteSelections(),
    testPrefix: '',
    handlers: editable
      ? {
          onSelect: selectClip,
          onMove: (clipId, startMs, trackId) => { edit(() => session.moveClip(clipId, startMs, trackId)) }
        }
      : null
  })
  byId('problems').textContent = timeline.problems.length === 0
    ? ''
    : `${timeline.problems.length} malformed entries skipped: ` +
      timeline.problems.slice(0, 3).map((p) => `${p.path}: ${p.message}`).join('; ')
  renderEditing()
}

function fillSelect (select: HTMLSelectElement, timeline: Timeline, keep: string): void {
  replace(select, ...timeline.tracks.map((t) => h('option', { value: t.id }, `${t.name} (${t.kind})`)))
  if (timeline.tracks.some((t) => t.id === keep)) select.value = keep
}

function renderEditing (): void {
  const timeline = state.timeline
  if (timeline === null) return
  const clipTrack = byId<HTMLSelectElement>('clip-track')
  fillSelect(clipTrack, timeline, clipTrack.value)
  const clip = timeline.clips.find((c) => c.id === state.selected) ?? null
  const moveTrack = byId<HTMLSelectElement>('move-track')
  const moveButton = byId<HTMLButtonElement>('move-clip')
  const moveStart = byId<HTMLInputElement>('move-start')
  moveButton.disabled = clip === null
  if (clip === null) {
    byId('move-clip-id').textContent = 'select a clip (or drag one)'
    fillSelect(moveTrack, timeline, moveTrack.value)
    return
  }
  const label = byId('move-clip-id')
  const editing = document.activeElement === moveStart || document.activeElement === moveTrack
  if (label.dataset.clipId !== clip.id || !editing) {
    // A newly selected clip, or one moved meanwhile (by anyone): show where it is now.
    moveStart.value = String(clip.start_ms)
    fillSelect(moveTrack, timeline, clip.track)
  } else {
    fillSelect(moveTrack, timeline, moveTrack.value)
  }
  label.dataset.clipId = clip.id
  label.textContent = `${clip.text ?? clip.kind} at ${formatMs(clip.start_ms)}`
}

function selectClip (clipId: string | null): void {
  state.selected = clipId
  const label = byId('move-clip-id')
  delete label.dataset.clipId
  state.session?.select(clipId)
  renderTimelineView()
}

function renderPresence (): void {
  const { collaborators, jobs } = state.presence
  const list = byId('collaborators')
  if (collaborators.length === 0) {
    replace(list, h('li', { class: 'hint' }, state.session === null ? 'Open a project.' : 'Nobody here yet.'))
  } else {
    replace(list, ...collaborators.map((c) => h('li', {
      'data-testid': 'collaborator', 'data-user-id': c.userId
    }, h('span', { class: 'dot', style: `background:${c.color}` }), c.name,
    c.self ? h('span', { class: 'hint' }, ' (you)') : null,
    c.selection !== null ? h('span', { class: 'hint' }, ' · editing a clip') : null)))
  }
  renderJobs(jobs)
}

function renderJobs (live = state.presence.jobs): void {
  const list = byId('jobs')
  const liveById = new Map(live.map((j) => [j.id, j]))
  const rows = state.jobs.filter((j) => j.status === 'queued' || j.status === 'running' || liveById.has(j.id))
  for (const j of live) {
    if (!rows.some((r) => r.id === j.id)) {
      rows.push({ id: j.id, kind: j.kind, status: j.status, stage: j.stage, progress: j.progress, estimate: 0, cost: null, created_at: '' })
    }
  }
  const recent = state.jobs.filter((j) => !rows.includes(j)).slice(0, 3)
  if (rows.length === 0 && recent.length === 0) {
    replace(list, h('li', { class: 'hint' }, 'No jobs.'))
    return
  }
  const item = (j: JobRow, running: boolean): HTMLLIElement => {
    const progress = liveById.get(j.id)?.progress ?? j.progress
    const stage = liveById.get(j.id)?.stage ?? j.stage
    return h('li', { 'data-testid': 'job', 'data-job-id': j.id, class: running ? 'job running' : 'job' },
      h('span', {}, `${j.kind} · ${liveById.get(j.id)?.status ?? j.status}${stage !== null ? ` · ${stage}` : ''}`),
      running ? h('progress', { max: 1, value: progress }) : null,
      h('span', { class: 'hint' }, running ? ` ${Math.round(progress * 100)} %` : j.cost !== null ? ` ${j.cost} credits` : ''))
  }
  replace(list, ...rows.map((j) => item(j, true)), ...recent.map((j) => item(j, false)))
}

function renderCredits (): void {
  const el = byId('credits')
  const c = state.credits
  el.textContent = c === null ? '' : `Credits: ${c.available} available (${c.balance} balance, ${c.held} held)`
  el.dataset.available = c === null ? '' : String(c.available)
}

function renderVersions (): void {
  const list = byId('versions')
  if (state.versions.length === 0) {
    replace(list, h('li', { class: 'hint' }, 'No versions yet.'))
    return
  }
  const editable = state.project?.role !== 'viewer'
  replace(list, ...state.versions.map((v) => h('li', { 'data-testid': 'version', 'data-version': v.version },
    h('span', { class: 'version-name' }, `#${v.version} ${v.kind}${v.label !== null ? ` “${v.label}”` : ''}` +
      (v.restored_from !== null ? ` (restored #${v.restored_from})` : '')),
    h('span', { class: 'hint' }, ` ${new Date(v.created_at).toLocaleString()} ${v.created_by ?? ''}`),
    h('button', { type: 'button', 'data-testid': 'version-preview-button', onclick: () => { void previewVersion(v.version) } }, 'Preview'),
    editable
      ? h('button', { type: 'button', 'data-testid': 'version-restore', onclick: () => { void restoreVersion(v.version) } }, 'Restore')
      : null)))
}

function renderPreview (): void {
  const box = byId('preview')
  const preview = state.preview
  box.hidden = preview === null
  if (preview === null) return
  box.dataset.version = String(preview.version)
  byId('preview-title').textContent = `Version #${preview.version}${preview.label !== null ? ` “${preview.label}”` : ''}: ` +
    `${plural(preview.timeline.tracks.length, 'track')}, ${plural(preview.timeline.clips.length, 'clip')}`
  byId<HTMLButtonElement>('preview-restore').hidden = state.project?.role === 'viewer'
  renderTimeline(byId('preview-timeline'), preview.timeline, {
    pxPerSecond: state.pxPerSecond, selected: null, remoteSelections: new Map(), handlers: null, testPrefix: 'preview-'
  })
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

function renderAll (): void {
  renderToken()
  renderProjects()
  renderStatus()
  renderNotice()
  renderPresence()
  renderCredits()
  renderVersions()
  renderPreview()
  if (state.timeline !== null) renderTimelineView()
  else replace(byId('timeline'))
}

// --- editing -----------------------------------------------------------------------------------

/** Runs a document edit; the SDK's helpers refuse bad values with an error we show. */
function edit (change: () => void): void {
  try {
    change()
  } catch (error) {
    showError(error)
  }
}

function numberField (id: string): number {
  return Number(byId<HTMLInputElement>(id).value)
}

function wireForms (): void {
  byId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
    event.preventDefault()
    applyToken(byId<HTMLInputElement>('token-input').value)
  })
  byId<HTMLFormElement>('new-project-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const input = byId<HTMLInputElement>('new-project-title')
    const title = input.value.trim()
    if (title === '') return
    void attempt(() => api.createProject(title)).then(async (project) => {
      if (project === undefined) return
      input.value = ''
      await refreshProjects()
      location.hash = `project=${project.id}`
    })
  })
  byId<HTMLFormElement>('add-track-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const session = state.session
    if (session === null) return
    const kind = byId<HTMLSelectElement>('track-kind').value as TrackKind
    const name = byId<HTMLInputElement>('track-name')
    edit(() => { session.addTrack(kind, name.value.trim()) })
    name.value = ''
  })
  byId<HTMLFormElement>('add-clip-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const session = state.session
    if (session === null) return
    const text = byId<HTMLInputElement>('clip-text').value.trim()
    edit(() => {
      const id = session.addClip({
        track: byId<HTMLSelectElement>('clip-track').value,
        kind: byId<HTMLSelectElement>('clip-kind').value as ClipKind,
        start_ms: numberField('clip-start'),
        duration_ms: numberField('clip-duration'),
        ...(text === '' ? {} : { text })
      })
      selectClip(id)
    })
  })
  byId<HTMLFormElement>('move-clip-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const session = state.session
    const clipId = state.selected
    if (session === null || clipId === null) return
    edit(() => { session.moveClip(clipId, numberField('move-start'), byId<HTMLSelectElement>('move-track').value) })
  })
  byId<HTMLFormElement>('new-version-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const project = state.project
    const label = byId<HTMLInputElement>('version-label')
    if (project === null || label.value.trim() === '') return
    void attempt(() => api.createVersion(project.id, label.value.trim())).then(async (version) => {
      if (version === undefined) return
      label.value = ''
      await refreshVersions()
    })
  })
  byId('preview-restore').addEventListener('click', () => {
    if (state.preview !== null) void restoreVersion(state.preview.version)
  })
  byId('preview-close').addEventListener('click', () => {
    state.preview = null
    renderPreview()
  })
  byId<HTMLInputElement>('zoom').addEventListener('input', (event) => {
    state.pxPerSecond = Number((event.target as HTMLInputElement).value)
    renderTimelineView()
    renderPreview()
  })
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') selectClip(null)
  })
}

function start (): void {
  wireForms()
  byId<HTMLInputElement>('token-input').value = tokens.token
  tokens.onChange(() => { renderToken(); renderStatus() })
  setInterval(renderToken, 5_000)
  window.addEventListener('hashchange', () => {
    const id = projectFromHash()
    if (id === null) closeProject()
    else if (id !== state.project?.id) openProject(id)
  })
  renderAll()
  void refreshProjects()
  void refreshCredits()
  const id = projectFromHash()
  if (id !== null && tokens.token !== '') openProject(id)
}

start()
