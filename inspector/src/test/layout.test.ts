import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  AXIS_MIN_MS, CLIP_WIDTH_MIN_PX, axisTicks, dragTarget, formatMs, layoutTimeline, tickStepMs
} from '../layout.js'

const timeline = {
  tracks: [
    { id: 't1', kind: 'video', name: 'V1' },
    { id: 't2', kind: 'audio', name: 'A1' }
  ],
  clips: [
    { id: 'c2', track: 't1', kind: 'video', start_ms: 4000, duration_ms: 1000, text: null, asset: 'a1' },
    { id: 'c1', track: 't1', kind: 'video', start_ms: 0, duration_ms: 2000, text: 'intro' },
    { id: 'c3', track: 't2', kind: 'audio', start_ms: 500, duration_ms: 1 },
    { id: 'orphan', track: 'gone', kind: 'video', start_ms: 90_000, duration_ms: 1000 }
  ]
}

test('rows follow track order, clips sorted by start, in pixels', () => {
  const layout = layoutTimeline(timeline, 50)
  assert.deepEqual(layout.rows.map((r) => r.track.id), ['t1', 't2'])
  const [v, a] = layout.rows
  assert.deepEqual(v?.clips.map((c) => [c.id, c.leftPx, c.widthPx, c.label]), [
    ['c1', 0, 100, 'intro'],
    ['c2', 200, 50, 'a1']
  ])
  // A 1 ms clip is still wide enough to see and grab; its label falls back to its kind.
  assert.deepEqual(a?.clips.map((c) => [c.leftPx, c.widthPx, c.label]), [[25, CLIP_WIDTH_MIN_PX, 'audio']])
})

test('clips of unknown tracks neither draw nor stretch the axis', () => {
  const layout = layoutTimeline(timeline, 50)
  assert.equal(layout.rows.flatMap((r) => r.clips).some((c) => c.id === 'orphan'), false)
  assert.equal(layout.endMs, AXIS_MIN_MS)
  assert.equal(layout.widthPx, AXIS_MIN_MS / 1000 * 50)
})

test('the axis extends past the last clip and to the visible width', () => {
  const long = { tracks: timeline.tracks, clips: [{ id: 'x', track: 't1', kind: 'video', start_ms: 20_000, duration_ms: 5_000 }] }
  assert.equal(layoutTimeline(long, 10).endMs, 27_000)
  assert.equal(layoutTimeline(long, 10, 1000).endMs, 100_000)
  assert.deepEqual(layoutTimeline({ tracks: [], clips: [] }, 10).rows, [])
})

test('ticks are at least 70 px apart on a round step', () => {
  assert.equal(tickStepMs(40), 2_000)
  assert.equal(tickStepMs(1000), 100)
  assert.equal(tickStepMs(0.001), 3_600_000)
  const ticks = axisTicks(10_000, 40)
  assert.deepEqual(ticks.map((t) => t.label), ['0:00', '0:02', '0:04', '0:06', '0:08', '0:10'])
  assert.deepEqual(ticks.map((t) => t.leftPx), [0, 80, 160, 240, 320, 400])
})

test('times read as minutes, seconds and milliseconds', () => {
  assert.equal(formatMs(0), '0:00')
  assert.equal(formatMs(65_250), '1:05.250')
  assert.equal(formatMs(-1500), '-0:01.500')
})

test('a dragged clip snaps and never goes before zero', () => {
  assert.equal(dragTarget(7500, 40, 40, 100), 8500)
  assert.equal(dragTarget(7500, 41, 40, 100), 8500)
  assert.equal(dragTarget(1000, -400, 40, 100), 0)
  assert.equal(dragTarget(1000, 3, 40, 0), 1075)
})
