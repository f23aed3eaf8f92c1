// Pure layout of a timeline on a time axis: rows of clip boxes in pixels, and axis ticks.
// Works on the SDK's readTimeline() result and on the REST JSON of a version alike.

export interface TrackLike {
  readonly id: string
  readonly kind: string
  readonly name: string
  readonly muted?: boolean
  readonly locked?: boolean
}

export interface ClipLike {
  readonly id: string
  readonly track: string
  readonly kind: string
  readonly start_ms: number
  readonly duration_ms: number
  readonly text?: string | null
  readonly asset?: string | null
}

export interface TimelineLike {
  readonly tracks: readonly TrackLike[]
  readonly clips: readonly ClipLike[]
}

export interface ClipBox {
  readonly id: string
  readonly kind: string
  readonly label: string
  readonly startMs: number
  readonly durationMs: number
  readonly leftPx: number
  readonly widthPx: number
}

export interface Row {
  readonly track: TrackLike
  readonly clips: readonly ClipBox[]
}

export interface Tick {
  readonly ms: number
  readonly leftPx: number
  readonly label: string
}

export interface Layout {
  readonly rows: readonly Row[]
  readonly endMs: number
  readonly widthPx: number
  readonly ticks: readonly Tick[]
}

// A clip stays visible and clickable however short it is.
export const CLIP_WIDTH_MIN_PX = 4
// The axis always shows at least this much time, and some room after the last clip.
export const AXIS_MIN_MS = 10_000
export const AXIS_TAIL_MS = 2_000
const TICK_SPACING_MIN_PX = 70
const TICK_STEPS_MS = [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
  120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000]

export function msToPx (ms: number, pxPerSecond: number): number {
  return (ms * pxPerSecond) / 1000
}

export function pxToMs (px: number, pxPerSecond: number): number {
  return Math.round((px * 1000) / pxPerSecond)
}

/** "1:05.250" style: minutes, seconds, and milliseconds only when there are some. */
export function formatMs (ms: number): string {
  const sign = ms < 0 ? '-' : ''
  const abs = Math.abs(Math.round(ms))
  const minutes = Math.floor(abs / 60_000)
  const seconds = Math.floor((abs % 60_000) / 1000)
  const millis = abs % 1000
  const base = `${sign}${minutes}:${String(seconds).padStart(2, '0')}`
  return millis === 0 ? base : `${base}.${String(millis).padStart(3, '0')}`
}

/** The smallest step whose ticks are at least TICK_SPACING_MIN_PX apart. */
export function tickStepMs (pxPerSecond: number): number {
  for (const step of TICK_STEPS_MS) {
    if (msToPx(step, pxPerSecond) >= TICK_SPACING_MIN_PX) return step
  }
  return TICK_STEPS_MS[TICK_STEPS_MS.length - 1] ?? 3_600_000
}

export function axisTicks (endMs: number, pxPerSecond: number): Tick[] {
  const step = tickStepMs(pxPerSecond)
  const ticks: Tick[] = []
  for (let ms = 0; ms <= endMs; ms += step) {
    ticks.push({ ms, leftPx: msToPx(ms, pxPerSecond), label: formatMs(ms) })
  }
  return ticks
}

function clipLabel (clip: ClipLike): string {
  if (typeof clip.text === 'string' && clip.text.length > 0) return clip.text
  if (typeof clip.asset === 'string' && clip.asset.length > 0) return clip.asset
  return clip.kind
}

/** Rows in the timeline's track order; clips of unknown tracks are left out (the reader
 * reports them as problems). */
export function layoutTimeline (timeline: TimelineLike, pxPerSecond: number, minWidthPx = 0): Layout {
  const byTrack = new Map<string, ClipLike[]>()
  for (const track of timeline.tracks) byTrack.set(track.id, [])
  let lastEnd = 0
  for (const clip of timeline.clips) {
    const list = byTrack.get(clip.track)
    if (list === undefined) continue
    list.push(clip)
    lastEnd = Math.max(lastEnd, clip.start_ms + clip.duration_ms)
  }
  const endMs = Math.max(AXIS_MIN_MS, lastEnd + AXIS_TAIL_MS, pxToMs(minWidthPx, pxPerSecond))
  const rows = timeline.tracks.map((track): Row => ({
    track,
    clips: (byTrack.get(track.id) ?? [])
      .slice()
      .sort((a, b) => a.start_ms - b.start_ms || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((clip): ClipBox => ({
        id: clip.id,
        kind: clip.kind,
        label: clipLabel(clip),
        startMs: clip.start_ms,
        durationMs: clip.duration_ms,
        leftPx: msToPx(clip.start_ms, pxPerSecond),
        widthPx: Math.max(CLIP_WIDTH_MIN_PX, msToPx(clip.duration_ms, pxPerSecond))
      }))
  }))
  return { rows, endMs, widthPx: msToPx(endMs, pxPerSecond), ticks: axisTicks(endMs, pxPerSecond) }
}

/** Where a dragged clip lands: never before 0, snapped to `snapMs`. */
export function dragTarget (startMs: number, deltaPx: number, pxPerSecond: number,
  snapMs: number): number {
  const raw = startMs + pxToMs(deltaPx, pxPerSecond)
  const snapped = snapMs > 0 ? Math.round(raw / snapMs) * snapMs : raw
  return Math.max(0, snapped)
}
