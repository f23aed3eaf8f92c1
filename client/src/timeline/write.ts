/**
 * The strict writers, mirroring crdt/timeline.py: each validates its arguments with the rules
 * the reader applies, throws a `TimelineError` subclass, and runs in one `doc.transact`, so one
 * call is one update on the wire. Every check happens before the first write: a refused edit
 * leaves the document untouched (Yjs does not roll a transaction back).
 */

import * as Y from 'yjs'

import { FractionalIndexError, isValidKey, keyBetween, spreadKeys } from '../fractionalIndex.js'
import {
  type AssetKind, type ClipKind, type RootName, type TrackKind, AssetInUseError, DEFAULT_FPS,
  DEFAULT_HEIGHT, DEFAULT_ORIGIN, DEFAULT_VOLUME, DEFAULT_WIDTH, DuplicateIdError, FIELDS, INVALID,
  InvalidValueError, MalformedDocumentError, TimelineError, UnknownAssetError, UnknownClipError,
  UnknownTrackError, compareStrings, describe, fieldOf, pyStringRepr
} from './schema.js'

type Values = Record<string, unknown>
type MissingError = new (message: string) => TimelineError

function validated (root: RootName, name: string, value: unknown): unknown {
  const field = fieldOf(root, name)
  const checked = field.check(value)
  if (checked === INVALID) {
    throw new InvalidValueError(`${name} must be ${field.expected}, got ${describeArgument(value)}`)
  }
  return checked
}

function describeArgument (value: unknown): string {
  return typeof value === 'string' ? pyStringRepr(value) : describe(value)
}

function validatedId (value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new InvalidValueError(`${what} must be a non-empty string, got ${describeArgument(value)}`)
  }
  return value
}

function rootForWrite (doc: Y.Doc, name: RootName): Y.Map<unknown> {
  const current = doc.share.get(name)
  if (current !== undefined && !(current instanceof Y.Map) && current.constructor !== Y.AbstractType) {
    throw new MalformedDocumentError(`root ${pyStringRepr(name)} is ${describe(current)}, not a map`)
  }
  return doc.getMap(name)
}

/** The `Y.Map` of an existing entity, or the right error. */
function entry (root: Y.Map<unknown>, key: unknown, label: string, Missing: MissingError): Y.Map<unknown> {
  const id = validatedId(key, `${label} id`)
  if (!root.has(id)) throw new Missing(`unknown ${label} ${pyStringRepr(id)}`)
  const value = root.get(id)
  if (!(value instanceof Y.Map)) {
    throw new MalformedDocumentError(`${label} ${pyStringRepr(id)} is ${describe(value)}, not a map`)
  }
  return value
}

function newId (root: Y.Map<unknown>, requested: string | undefined, label: string): string {
  if (requested === undefined) return randomHex()
  validatedId(requested, `${label} id`)
  if (root.has(requested)) throw new DuplicateIdError(`${label} ${pyStringRepr(requested)} already exists`)
  return requested
}

function randomHex (): string {
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40 // a version-4 UUID, as uuid4().hex on the server
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** Stored value equals `next`, treating numbers by value but `1` never as `true`. */
function same (current: unknown, next: unknown): boolean {
  if (typeof current === 'boolean' || typeof next === 'boolean') return current === next
  const a = typeof current === 'bigint' ? Number(current) : current
  return typeof a === typeof next && a === next
}

/** Write only the fields that change, so an edit never overwrites a concurrent edit of the same
 * field with the value it already had. `null` deletes the field. */
function setFields (target: Y.Map<unknown>, values: Values): void {
  for (const [name, value] of Object.entries(values)) {
    if (value === null) {
      if (target.has(name)) target.delete(name)
    } else if (!target.has(name) || !same(target.get(name), value)) {
      target.set(name, value)
    }
  }
}

function defined (values: Record<string, unknown>): Values {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined))
}

// --- Project ---------------------------------------------------------------------------------

export interface ProjectInit {
  title: string
  fps?: number
  width?: number
  height?: number
}

/** Set the project fields that are not set yet; existing values are kept (idempotent). */
export function initProject (doc: Y.Doc, init: ProjectInit): void {
  const values: Values = {
    title: validated('project', 'title', init.title),
    fps: validated('project', 'fps', init.fps ?? DEFAULT_FPS),
    width: validated('project', 'width', init.width ?? DEFAULT_WIDTH),
    height: validated('project', 'height', init.height ?? DEFAULT_HEIGHT)
  }
  doc.transact(() => {
    const project = rootForWrite(doc, 'project')
    for (const [name, value] of Object.entries(values)) {
      if (!project.has(name)) project.set(name, value)
    }
  })
}

export interface ProjectFields {
  title?: string
  fps?: number
  width?: number
  height?: number
  /** `null` clears the thumbnail. */
  thumbnail_asset?: string | null
}

/** Set any of title, fps, width, height, thumbnail_asset (`thumbnail_asset: null` clears). */
export function setProjectFields (doc: Y.Doc, fields: ProjectFields): void {
  const given = defined(fields as Record<string, unknown>)
  const allowed = new Set(FIELDS.project.map((f) => f.name))
  const unknown = Object.keys(given).filter((name) => !allowed.has(name)).sort(compareStrings)
  if (unknown.length > 0) throw new InvalidValueError(`unknown project field(s): ${unknown.join(', ')}`)
  const values: Values = {}
  for (const [name, value] of Object.entries(given)) {
    values[name] = name === 'thumbnail_asset' && value === null ? null : validated('project', name, value)
  }
  doc.transact(() => {
    const thumbnail = values['thumbnail_asset']
    if (thumbnail !== undefined && thumbnail !== null) {
      entry(rootForWrite(doc, 'assets'), thumbnail, 'asset', UnknownAssetError)
    }
    setFields(rootForWrite(doc, 'project'), values)
  })
}

export function setTitle (doc: Y.Doc, title: string): void {
  setProjectFields(doc, { title })
}

// --- Tracks ------------------------------------------------------------------------------------

type Sequence = Array<[string, string]>

/** `[id, order]` of every track entry in display order, with the reader's order default. */
function trackSequence (tracks: Y.Map<unknown>): Sequence {
  const sequence: Sequence = []
  for (const [id, value] of tracks.entries()) {
    if (value instanceof Y.Map) {
      const order = value.get('order')
      sequence.push([id, typeof order === 'string' ? order : ''])
    }
  }
  return sequence.sort((a, b) => compareStrings(a[1], b[1]) || compareStrings(a[0], b[0]))
}

/** Order key for a track going to `index` of `sequence` (which excludes it), plus new keys for
 * other tracks when they have to be renumbered. */
function place (sequence: Sequence, index: number, current: string | null = null): [string, Map<string, string>] {
  const low = index > 0 ? sequence[index - 1]?.[1] ?? null : null
  const high = index < sequence.length ? sequence[index]?.[1] ?? null : null
  if (current !== null && isValidKey(current)) {
    if ((low === null || compareStrings(low, current) < 0) && (high === null || compareStrings(current, high) < 0)) {
      return [current, new Map()]
    }
  }
  try {
    return [keyBetween(low, high), new Map()]
  } catch (error) {
    if (!(error instanceof FractionalIndexError)) throw error
    // The neighbours tie (two replicas inserted at the same spot at once) or hold keys that
    // cannot be split (written by another client): renumber every track, keeping their order.
    const keys = spreadKeys(sequence.length + 1)
    const [key] = keys.splice(index, 1)
    return [key ?? '', new Map(sequence.map(([id], i) => [id, keys[i] ?? '']))]
  }
}

function applyRekeys (tracks: Y.Map<unknown>, rekeys: Map<string, string>): void {
  for (const [id, key] of rekeys) {
    const track = tracks.get(id)
    if (track instanceof Y.Map) setFields(track, { order: key })
  }
}

function insertIndex (sequence: Sequence, after: string | null, atEnd: boolean): number {
  if (after === null) return atEnd ? sequence.length : 0
  return 1 + sequence.findIndex(([id]) => id === after)
}

export interface NewTrack {
  kind: TrackKind
  name: string
  id?: string
  /** Place right after this track; default: after the last track. */
  after?: string
}

/** Add a track right after `after`, or after the last track; returns its id. */
export function addTrack (doc: Y.Doc, track: NewTrack): string {
  const values: Values = {
    kind: validated('tracks', 'kind', track.kind),
    name: validated('tracks', 'name', track.name),
    muted: false,
    locked: false
  }
  let id = ''
  doc.transact(() => {
    const tracks = rootForWrite(doc, 'tracks')
    id = newId(tracks, track.id, 'track')
    if (track.after !== undefined) entry(tracks, track.after, 'track', UnknownTrackError)
    const sequence = trackSequence(tracks)
    const [order, rekeys] = place(sequence, insertIndex(sequence, track.after ?? null, true))
    applyRekeys(tracks, rekeys)
    tracks.set(id, new Y.Map(Object.entries({ ...values, order })))
  })
  return id
}

/** Move a track right after `after`, or to the top when `after` is `null`. Only `order`
 * changes, so concurrent renames or flag changes survive a move. */
export function moveTrack (doc: Y.Doc, trackId: string, after: string | null): void {
  doc.transact(() => {
    const tracks = rootForWrite(doc, 'tracks')
    const target = entry(tracks, trackId, 'track', UnknownTrackError)
    if (after !== null) entry(tracks, after, 'track', UnknownTrackError)
    if (after === trackId) return
    const sequence = trackSequence(tracks).filter(([id]) => id !== trackId)
    const current = target.get('order')
    const [order, rekeys] = place(
      sequence, insertIndex(sequence, after, false), typeof current === 'string' ? current : null
    )
    applyRekeys(tracks, rekeys)
    setFields(target, { order })
  })
}

export function renameTrack (doc: Y.Doc, trackId: string, name: string): void {
  const value = validated('tracks', 'name', name)
  doc.transact(() => {
    setFields(entry(rootForWrite(doc, 'tracks'), trackId, 'track', UnknownTrackError), { name: value })
  })
}

/** Set `muted` and/or `locked`; a flag left out is not touched. */
export function setTrackFlags (doc: Y.Doc, trackId: string, flags: { muted?: boolean, locked?: boolean }): void {
  const values: Values = {}
  for (const [name, value] of Object.entries(defined(flags))) values[name] = validated('tracks', name, value)
  doc.transact(() => {
    setFields(entry(rootForWrite(doc, 'tracks'), trackId, 'track', UnknownTrackError), values)
  })
}

/** Delete a track and every clip on it (clips in any shape, if their `track` matches). */
export function deleteTrack (doc: Y.Doc, trackId: string): void {
  validatedId(trackId, 'track id')
  doc.transact(() => {
    const tracks = rootForWrite(doc, 'tracks')
    const clips = rootForWrite(doc, 'clips')
    if (!tracks.has(trackId)) throw new UnknownTrackError(`unknown track ${pyStringRepr(trackId)}`)
    for (const clipId of clipsReferencing(clips, 'track', trackId)) clips.delete(clipId)
    tracks.delete(trackId)
  })
}

function clipsReferencing (clips: Y.Map<unknown>, name: string, target: string): string[] {
  const found: string[] = []
  for (const [id, value] of clips.entries()) {
    let ref: unknown
    if (value instanceof Y.Map) ref = value.get(name)
    else if (isPlainObject(value)) ref = value[name]
    if (ref === target) found.push(id)
  }
  return found.sort(compareStrings)
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) &&
    !(value instanceof Uint8Array) && !(value instanceof Y.AbstractType)
}

// --- Assets ------------------------------------------------------------------------------------

export interface NewAsset {
  kind: AssetKind
  name: string
  uri: string
  duration_ms?: number
  /** Default `upload`. */
  origin?: string
  id?: string
}

/** Register a media asset (an upload or a generated file); returns its id. */
export function addAsset (doc: Y.Doc, asset: NewAsset): string {
  const values: Values = {
    kind: validated('assets', 'kind', asset.kind),
    name: validated('assets', 'name', asset.name),
    uri: validated('assets', 'uri', asset.uri),
    origin: validated('assets', 'origin', asset.origin ?? DEFAULT_ORIGIN)
  }
  if (asset.duration_ms !== undefined) values['duration_ms'] = validated('assets', 'duration_ms', asset.duration_ms)
  let id = ''
  doc.transact(() => {
    const assets = rootForWrite(doc, 'assets')
    id = newId(assets, asset.id, 'asset')
    assets.set(id, new Y.Map(Object.entries(values)))
  })
  return id
}

/** Delete an asset and clear the project thumbnail if it was this asset. Throws
 * `AssetInUseError` while clips use it, unless `cascade` is set (those clips are deleted too). */
export function deleteAsset (doc: Y.Doc, assetId: string, options: { cascade?: boolean } = {}): void {
  validatedId(assetId, 'asset id')
  doc.transact(() => {
    const assets = rootForWrite(doc, 'assets')
    const clips = rootForWrite(doc, 'clips')
    const project = rootForWrite(doc, 'project')
    if (!assets.has(assetId)) throw new UnknownAssetError(`unknown asset ${pyStringRepr(assetId)}`)
    const users = clipsReferencing(clips, 'asset', assetId)
    if (users.length > 0 && options.cascade !== true) {
      const shown = users.slice(0, 5).map(pyStringRepr).join(', ')
      const more = users.length > 5 ? ` and ${users.length - 5} more` : ''
      throw new AssetInUseError(`asset ${pyStringRepr(assetId)} is used by clip(s) ${shown}${more}`)
    }
    for (const clipId of users) clips.delete(clipId)
    if (project.get('thumbnail_asset') === assetId) project.delete('thumbnail_asset')
    assets.delete(assetId)
  })
}

// --- Clips -------------------------------------------------------------------------------------

export interface NewClip {
  track: string
  kind: ClipKind
  start_ms: number
  duration_ms: number
  asset?: string
  source_in_ms?: number
  volume?: number
  text?: string
  id?: string
}

/** Place a clip on a track; returns its id. `asset` must exist when given. */
export function addClip (doc: Y.Doc, clip: NewClip): string {
  const values: Values = {
    track: validatedId(clip.track, 'track id'),
    kind: validated('clips', 'kind', clip.kind),
    start_ms: validated('clips', 'start_ms', clip.start_ms),
    duration_ms: validated('clips', 'duration_ms', clip.duration_ms),
    source_in_ms: validated('clips', 'source_in_ms', clip.source_in_ms ?? 0),
    volume: validated('clips', 'volume', clip.volume ?? DEFAULT_VOLUME)
  }
  if (clip.text !== undefined) values['text'] = validated('clips', 'text', clip.text)
  let id = ''
  doc.transact(() => {
    entry(rootForWrite(doc, 'tracks'), clip.track, 'track', UnknownTrackError)
    if (clip.asset !== undefined) {
      entry(rootForWrite(doc, 'assets'), clip.asset, 'asset', UnknownAssetError)
      values['asset'] = clip.asset
    }
    const clips = rootForWrite(doc, 'clips')
    id = newId(clips, clip.id, 'clip')
    clips.set(id, new Y.Map(Object.entries(values)))
  })
  return id
}

function editClip (doc: Y.Doc, clipId: string, values: Values): void {
  doc.transact(() => {
    setFields(entry(rootForWrite(doc, 'clips'), clipId, 'clip', UnknownClipError), values)
  })
}

/** Move a clip in time and optionally to another track (changes only those fields). */
export function moveClip (doc: Y.Doc, clipId: string, to: { start_ms: number, track?: string }): void {
  const values: Values = { start_ms: validated('clips', 'start_ms', to.start_ms) }
  doc.transact(() => {
    if (to.track !== undefined) {
      entry(rootForWrite(doc, 'tracks'), to.track, 'track', UnknownTrackError)
      values['track'] = to.track
    }
    editClip(doc, clipId, values)
  })
}

/** Change any of the clip's timing fields; fields left out are not touched. */
export function trimClip (
  doc: Y.Doc, clipId: string, timing: { start_ms?: number, duration_ms?: number, source_in_ms?: number }
): void {
  const values: Values = {}
  for (const name of ['start_ms', 'duration_ms', 'source_in_ms'] as const) {
    const value = timing[name]
    if (value !== undefined) values[name] = validated('clips', name, value)
  }
  editClip(doc, clipId, values)
}

/** Set the text of a subtitle/title clip; `null` removes it. */
export function setClipText (doc: Y.Doc, clipId: string, text: string | null): void {
  editClip(doc, clipId, { text: text === null ? null : validated('clips', 'text', text) })
}

export function setClipVolume (doc: Y.Doc, clipId: string, volume: number): void {
  editClip(doc, clipId, { volume: validated('clips', 'volume', volume) })
}

/** Delete a clip, whatever shape its entry has. */
export function deleteClip (doc: Y.Doc, clipId: string): void {
  validatedId(clipId, 'clip id')
  doc.transact(() => {
    const clips = rootForWrite(doc, 'clips')
    if (!clips.has(clipId)) throw new UnknownClipError(`unknown clip ${pyStringRepr(clipId)}`)
    clips.delete(clipId)
  })
}
