/**
 * The timeline document's layout and field rules, mirroring crdt/timeline.py.
 *
 * Four root maps, each flat and keyed by id:
 *
 *     project  title, fps, width, height, thumbnail_asset?
 *     tracks   id -> Y.Map{kind, name, order, muted, locked}
 *     clips    id -> Y.Map{track, kind, asset?, start_ms, duration_ms, source_in_ms, volume, text?}
 *     assets   id -> Y.Map{kind, name, uri, duration_ms?, origin}
 *
 * Times are integer milliseconds stored as Yjs numbers. The same rules validate what the reader
 * finds and what the writers accept, as on the server.
 */

import * as Y from 'yjs'

export const ROOT_PROJECT = 'project'
export const ROOT_TRACKS = 'tracks'
export const ROOT_CLIPS = 'clips'
export const ROOT_ASSETS = 'assets'
export const ROOTS = [ROOT_PROJECT, ROOT_TRACKS, ROOT_CLIPS, ROOT_ASSETS] as const
export type RootName = typeof ROOTS[number]

/** Largest integer a JS number holds exactly. */
export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER

export const DEFAULT_FPS = 30
export const DEFAULT_WIDTH = 1920
export const DEFAULT_HEIGHT = 1080
export const DEFAULT_VOLUME = 1
export const DEFAULT_ORIGIN = 'upload'

export const TRACK_KINDS = ['video', 'audio', 'subtitle', 'overlay'] as const
export type TrackKind = typeof TRACK_KINDS[number]
export const CLIP_KINDS = ['video', 'audio', 'image', 'subtitle', 'title'] as const
export type ClipKind = typeof CLIP_KINDS[number]
export const ASSET_KINDS = ['video', 'audio', 'image'] as const
export type AssetKind = typeof ASSET_KINDS[number]

// --- Read model (the JSON shape of the server's Timeline.to_json()) ---------------------------

export interface Problem {
  /** `root[/id[/field]]` */
  path: string
  message: string
}

export interface ProjectInfo {
  title: string
  fps: number
  width: number
  height: number
  thumbnail_asset: string | null
}

export interface Track {
  id: string
  kind: TrackKind
  name: string
  order: string
  muted: boolean
  locked: boolean
}

export interface Clip {
  id: string
  track: string
  kind: ClipKind
  asset: string | null
  start_ms: number
  duration_ms: number
  source_in_ms: number
  volume: number
  text: string | null
}

export interface Asset {
  id: string
  kind: AssetKind
  name: string
  uri: string
  duration_ms: number | null
  origin: string
}

/**
 * A consistent snapshot: every clip's track exists, every asset reference resolves. `tracks` are
 * ordered by `(order, id)`, `clips` by (track position, `start_ms`, `id`), `assets` and
 * `problems` by id/path, so converged documents give equal snapshots.
 */
export interface Timeline {
  project: ProjectInfo
  tracks: Track[]
  clips: Clip[]
  assets: Asset[]
  problems: Problem[]
}

// --- Errors (the TimelineError tree of crdt/timeline.py) ---------------------------------------

/** A timeline edit was refused; the document is unchanged. */
export class TimelineError extends Error {
  override name = 'TimelineError'
}
/** An argument has the wrong type or is out of range (e.g. a negative duration). */
export class InvalidValueError extends TimelineError {
  override name = 'InvalidValueError'
}
/** An explicit id for a new track, clip or asset is already taken. */
export class DuplicateIdError extends TimelineError {
  override name = 'DuplicateIdError'
}
/** No track with this id. */
export class UnknownTrackError extends TimelineError {
  override name = 'UnknownTrackError'
}
/** No clip with this id. */
export class UnknownClipError extends TimelineError {
  override name = 'UnknownClipError'
}
/** No asset with this id. */
export class UnknownAssetError extends TimelineError {
  override name = 'UnknownAssetError'
}
/** The asset is still used by clips (pass `cascade: true` to delete them too). */
export class AssetInUseError extends TimelineError {
  override name = 'AssetInUseError'
}
/** The edit targets content a client wrote in the wrong shape; such entries can still be deleted. */
export class MalformedDocumentError extends TimelineError {
  override name = 'MalformedDocumentError'
}

// --- Field rules --------------------------------------------------------------------------------

/** What a check returns for a value it rejects (`null` is a legitimate value for some fields). */
export const INVALID: unique symbol = Symbol('invalid')
export type Checked = unknown

type Check = (value: unknown) => Checked

/** An integer number within the JS safe range, else `null`. */
export function asInt (value: unknown): number | null {
  // A BigInt (what a client may store for a large integer) counts as an integer, as on the server.
  if (typeof value === 'bigint') {
    return value <= BigInt(MAX_SAFE_INTEGER) && value >= -BigInt(MAX_SAFE_INTEGER) ? Number(value) : null
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) return null
  return Math.abs(value) <= MAX_SAFE_INTEGER ? value : null
}

function intAtLeast (minimum: number): Check {
  return (value) => {
    const n = asInt(value)
    return n !== null && n >= minimum ? n : INVALID
  }
}

function numberAtLeast (minimum: number, exclusive: boolean): Check {
  return (raw) => {
    const value = typeof raw === 'bigint' ? Number(raw) : raw
    if (typeof value !== 'number' || !Number.isFinite(value)) return INVALID
    if (value < minimum || (exclusive && value === minimum)) return INVALID
    return value
  }
}

function string (nonEmpty: boolean): Check {
  return (value) => typeof value === 'string' && (!nonEmpty || value !== '') ? value : INVALID
}

const boolean: Check = (value) => typeof value === 'boolean' ? value : INVALID

function memberOf (values: readonly string[]): Check {
  return (value) => typeof value === 'string' && values.includes(value) ? value : INVALID
}

/**
 * How one stored field is validated, and what the reader does when it is bad. `required`: a bad
 * or missing value makes the reader skip the entity. Otherwise a missing value (or `null` when
 * `nullable`) silently means `default`, and a bad value is replaced by `default` and reported.
 * `defaultText` is how the server words the default (Python's json.dumps, e.g. `30.0`).
 */
export interface Field {
  name: string
  expected: string
  check: Check
  default: unknown
  defaultText: string
  required: boolean
  nullable: boolean
}

function field (
  name: string, expected: string, check: Check,
  options: { default?: unknown, defaultText?: string, required?: boolean, nullable?: boolean } = {}
): Field {
  const dflt = options.default ?? null
  return {
    name,
    expected,
    check,
    default: dflt,
    defaultText: options.defaultText ?? JSON.stringify(dflt),
    required: options.required ?? false,
    nullable: options.nullable ?? false
  }
}

const ID = string(true)
const oneOf = (values: readonly string[]): string => 'one of ' + values.join(', ')

export const PROJECT_FIELDS: readonly Field[] = [
  field('title', 'a string', string(false), { default: '' }),
  field('fps', 'a number > 0', numberAtLeast(0, true), { default: DEFAULT_FPS, defaultText: '30.0' }),
  field('width', 'an integer >= 1', intAtLeast(1), { default: DEFAULT_WIDTH }),
  field('height', 'an integer >= 1', intAtLeast(1), { default: DEFAULT_HEIGHT }),
  field('thumbnail_asset', 'a non-empty string', ID, { nullable: true })
]
export const TRACK_FIELDS: readonly Field[] = [
  field('kind', oneOf(TRACK_KINDS), memberOf(TRACK_KINDS), { required: true }),
  field('name', 'a string', string(false), { default: '' }),
  field('order', 'a string', string(false), { default: '' }),
  field('muted', 'a boolean', boolean, { default: false }),
  field('locked', 'a boolean', boolean, { default: false })
]
export const CLIP_FIELDS: readonly Field[] = [
  field('track', 'a non-empty string', ID, { required: true }),
  field('kind', oneOf(CLIP_KINDS), memberOf(CLIP_KINDS), { required: true }),
  field('start_ms', 'an integer >= 0', intAtLeast(0), { required: true }),
  field('duration_ms', 'an integer >= 1', intAtLeast(1), { required: true }),
  field('asset', 'a non-empty string', ID, { nullable: true }),
  field('source_in_ms', 'an integer >= 0', intAtLeast(0), { default: 0 }),
  field('volume', 'a number >= 0', numberAtLeast(0, false), { default: DEFAULT_VOLUME, defaultText: '1.0' }),
  field('text', 'a string', string(false), { nullable: true })
]
export const ASSET_FIELDS: readonly Field[] = [
  field('kind', oneOf(ASSET_KINDS), memberOf(ASSET_KINDS), { required: true }),
  field('name', 'a string', string(false), { default: '' }),
  field('uri', 'a non-empty string', ID, { required: true }),
  field('duration_ms', 'an integer >= 1', intAtLeast(1), { nullable: true }),
  field('origin', 'a non-empty string', ID, { default: DEFAULT_ORIGIN })
]

export const FIELDS: Readonly<Record<RootName, readonly Field[]>> = {
  project: PROJECT_FIELDS,
  tracks: TRACK_FIELDS,
  clips: CLIP_FIELDS,
  assets: ASSET_FIELDS
}

export function fieldOf (root: RootName, name: string): Field {
  const found = FIELDS[root].find((f) => f.name === name)
  if (found === undefined) throw new Error(`no field ${name} in ${root}`)
  return found
}

// --- Descriptions of stored values, worded as the server words them ----------------------------

/** Code-point order, as Python sorts strings (JS `<` compares UTF-16 units). */
export function compareStrings (a: string, b: string): number {
  if (a === b) return 0
  const x = a[Symbol.iterator]()
  const y = b[Symbol.iterator]()
  for (;;) {
    const p = x.next()
    const q = y.next()
    if (p.done === true) return q.done === true ? 0 : -1
    if (q.done === true) return 1
    const cp = p.value.codePointAt(0) ?? 0
    const cq = q.value.codePointAt(0) ?? 0
    if (cp !== cq) return cp < cq ? -1 : 1
  }
}

/** Python's `repr()` of a float (the server sees every Yjs number, BigInts too, as a float). */
export function pyFloatRepr (value: number): string {
  if (Number.isNaN(value)) return 'nan'
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf'
  // Yjs sends -0 as an integer, which arrives on the server as 0.0.
  if (value === 0) return '0.0'
  const [mantissa = '', exponentText = '0'] = value.toExponential().split('e')
  const exponent = Number(exponentText)
  const negative = mantissa.startsWith('-')
  const digits = mantissa.replace('-', '').replace('.', '')
  const sign = negative ? '-' : ''
  if (exponent < -4 || exponent >= 16) {
    const rest = digits.length > 1 ? '.' + digits.slice(1) : ''
    const e = Math.abs(exponent)
    return `${sign}${digits.charAt(0)}${rest}e${exponent < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`
  const whole = digits.length > exponent + 1 ? digits.slice(0, exponent + 1) : digits.padEnd(exponent + 1, '0')
  const fraction = digits.slice(exponent + 1)
  return `${sign}${whole}.${fraction === '' ? '0' : fraction}`
}

/** Python's `repr()` of a string, for the printable text problem messages quote. */
export function pyStringRepr (value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'"
  let out = quote
  for (const ch of value) {
    const cp = ch.codePointAt(0) ?? 0
    if (ch === '\\') out += '\\\\'
    else if (ch === quote) out += '\\' + quote
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) out += '\\x' + cp.toString(16).padStart(2, '0')
    else out += ch
  }
  return out + quote
}

function yTypeName (value: Y.AbstractType<unknown>): string {
  if (value instanceof Y.XmlText) return 'XmlText'
  if (value instanceof Y.XmlElement) return 'XmlElement'
  if (value instanceof Y.XmlFragment) return 'XmlFragment'
  if (value instanceof Y.Map) return 'Map'
  if (value instanceof Y.Array) return 'Array'
  if (value instanceof Y.Text) return 'Text'
  return 'AbstractType'
}

/** Short, bounded description of a stored value for a problem message. */
export function describe (value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (typeof value === 'number') return pyFloatRepr(value)
  // The server receives a BigInt as a float, as every other number.
  if (typeof value === 'bigint') return pyFloatRepr(Number(value))
  if (typeof value === 'string') {
    // A client can store megabytes in a field; keep problem reports small.
    const chars = Array.from(value)
    return chars.length <= 40 ? pyStringRepr(value) : `${pyStringRepr(chars.slice(0, 40).join(''))}...`
  }
  if (value instanceof Y.AbstractType) return `a Y.${yTypeName(value)}`
  if (value instanceof Uint8Array) return 'a bytearray'
  if (Array.isArray(value)) return 'a plain array'
  if (typeof value === 'object') return 'a plain object'
  return `a ${typeof value}`
}
