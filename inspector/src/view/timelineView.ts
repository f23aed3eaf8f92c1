// Draws a timeline (live or a version's preview) as track rows of clips on a time axis.
// Editing (select, drag to move) is offered only when handlers are given.

import { h, replace } from '../dom.js'
import { type Layout, type TimelineLike, dragTarget, layoutTimeline } from '../layout.js'

export interface TimelineHandlers {
  onSelect: (clipId: string | null) => void
  onMove: (clipId: string, startMs: number, trackId: string) => void
}

export interface TimelineViewOptions {
  readonly pxPerSecond: number
  readonly selected: string | null
  /** Clip id → colours of the collaborators who have it selected. */
  readonly remoteSelections: ReadonlyMap<string, readonly string[]>
  readonly handlers: TimelineHandlers | null
  readonly testPrefix: string
}

const DRAG_THRESHOLD_PX = 3
const SNAP_MS = 100
const TRACK_HEADER_PX = 140

export function renderTimeline (container: HTMLElement, timeline: TimelineLike,
  options: TimelineViewOptions): Layout {
  // The axis fills the visible width at least (the header column takes its part).
  const layout = layoutTimeline(timeline, options.pxPerSecond, container.clientWidth - TRACK_HEADER_PX - 2)
  const axis = h('div', { class: 'axis', style: `width:${layout.widthPx}px` },
    ...layout.ticks.map((tick) => h('span', { class: 'tick', style: `left:${tick.leftPx}px` }, tick.label)))
  const rows = layout.rows.map((row) => {
    const lane = h('div', {
      class: 'lane',
      style: `width:${layout.widthPx}px`,
      'data-track-id': row.track.id
    })
    for (const box of row.clips) {
      const remote = options.remoteSelections.get(box.id) ?? []
      const clip = h('div', {
        class: `clip kind-${box.kind}${box.id === options.selected ? ' selected' : ''}`,
        style: `left:${box.leftPx}px;width:${box.widthPx}px` +
          (remote.length > 0 ? `;box-shadow:0 0 0 2px ${remote[0]}` : ''),
        title: `${box.label} · ${box.startMs} ms + ${box.durationMs} ms`,
        'data-testid': `${options.testPrefix}clip`,
        'data-clip-id': box.id,
        'data-start-ms': box.startMs,
        'data-duration-ms': box.durationMs,
        'data-track-id': row.track.id
      }, h('span', { class: 'clip-label' }, box.label))
      if (options.handlers !== null) attachDrag(clip, box.id, box.startMs, row.track.id, options)
      lane.append(clip)
    }
    return h('div', { class: 'row' },
      h('div', { class: `track-head kind-${row.track.kind}`, style: `width:${TRACK_HEADER_PX}px` },
        h('span', { class: 'track-name' }, row.track.name),
        h('span', { class: 'track-kind' }, row.track.kind + (row.track.muted === true ? ' · muted' : '') +
          (row.track.locked === true ? ' · locked' : ''))),
      lane)
  })
  const body = rows.length === 0
    ? [h('p', { class: 'empty' }, 'No tracks yet.')]
    : rows
  replace(container,
    h('div', { class: 'axis-row' }, h('div', { style: `width:${TRACK_HEADER_PX}px` }), axis),
    ...body)
  return layout
}

function attachDrag (clip: HTMLElement, clipId: string, startMs: number, trackId: string,
  options: TimelineViewOptions): void {
  const handlers = options.handlers
  if (handlers === null) return
  let originX = 0
  let dragging = false
  let pressed = false
  clip.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return
    pressed = true
    dragging = false
    originX = event.clientX
    clip.setPointerCapture(event.pointerId)
  })
  clip.addEventListener('pointermove', (event) => {
    if (!pressed) return
    const dx = event.clientX - originX
    if (!dragging && Math.abs(dx) < DRAG_THRESHOLD_PX) return
    dragging = true
    clip.classList.add('dragging')
    clip.style.transform = `translateX(${dx}px)`
  })
  clip.addEventListener('pointerup', (event) => {
    if (!pressed) return
    pressed = false
    clip.classList.remove('dragging')
    clip.style.transform = ''
    if (!dragging) {
      handlers.onSelect(clipId)
      return
    }
    dragging = false
    const under = document.elementsFromPoint(event.clientX, event.clientY)
      .map((el) => el.closest('.lane'))
      .find((el): el is HTMLElement => el instanceof HTMLElement)
    const target = under?.dataset.trackId ?? trackId
    handlers.onMove(clipId, dragTarget(startMs, event.clientX - originX, options.pxPerSecond, SNAP_MS), target)
  })
}
