/**
 * The tolerant reader, mirroring `read_timeline` of crdt/timeline.py: any client can write
 * anything into the document, so every deviation is reported as a problem, never thrown.
 */

import * as Y from 'yjs'

import {
  type Asset, type Clip, type Field, type Problem, type ProjectInfo, type RootName, type Timeline,
  type Track, FIELDS, INVALID, ROOTS, compareStrings, describe, pyStringRepr
} from './schema.js'

type Fields = Record<string, unknown>

/**
 * Read a validated snapshot of the timeline. Never throws because of document content.
 *
 * - a root that is not a map (e.g. a `Y.Array`) is ignored;
 * - an entry of `tracks`/`clips`/`assets` that is not a `Y.Map` is skipped;
 * - an entity whose required field is missing or bad is skipped (a track's `kind`; a clip's
 *   `track`, `kind`, `start_ms`, `duration_ms`; an asset's `kind`, `uri`);
 * - a clip whose track does not exist is skipped;
 * - any other bad field takes its default (reported; a missing optional field is not), and a
 *   reference to a missing asset becomes `null`.
 *
 * Integral numbers are integers; other numbers, NaN, infinities, booleans and numbers beyond
 * 2**53 are not. Unknown extra fields are ignored. Each problem is `{path, message}` worded as
 * the server words it.
 */
export function readTimeline (doc: Y.Doc): Timeline {
  const problems: Problem[] = []
  const roots = readRoots(doc, problems)
  const project = readEntity(roots.project, 'project', FIELDS.project, problems, '') ?? {}
  const rawTracks = readEntities(roots.tracks, 'tracks', 'track', problems)
  const rawClips = readEntities(roots.clips, 'clips', 'clip', problems)
  const rawAssets = readEntities(roots.assets, 'assets', 'asset', problems)

  const assets = [...rawAssets.entries()]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([id, fields]) => ({ id, ...fields }) as unknown as Asset)
  const assetIds = new Set(assets.map((asset) => asset.id))
  const tracks = [...rawTracks.entries()]
    .map(([id, fields]) => ({ id, ...fields }) as unknown as Track)
    .sort((a, b) => compareStrings(a.order, b.order) || compareStrings(a.id, b.id))
  const clips = resolveClips(rawClips, tracks, assetIds, problems)
  const info = resolveAssetRef(project, 'thumbnail_asset', 'project', assetIds, problems)
  problems.sort((a, b) => compareStrings(a.path, b.path) || compareStrings(a.message, b.message))
  return {
    project: info as unknown as ProjectInfo,
    tracks,
    clips,
    assets,
    problems
  }
}

/** Each timeline root as a `Y.Map`, or `null` when absent or of another type. */
function readRoots (doc: Y.Doc, problems: Problem[]): Record<RootName, Y.Map<unknown> | null> {
  const roots: Record<string, Y.Map<unknown> | null> = {}
  for (const name of ROOTS) {
    roots[name] = guarded(() => rootAsMap(doc, name, problems), null, name, problems)
  }
  return roots as Record<RootName, Y.Map<unknown> | null>
}

function rootAsMap (doc: Y.Doc, name: RootName, problems: Problem[]): Y.Map<unknown> | null {
  const present = doc.share.get(name)
  if (present === undefined) return null
  if (present instanceof Y.Map) return present
  if (present.constructor !== Y.AbstractType) {
    problems.push({ path: name, message: `expected a map, got ${describe(present)}; root ignored` })
    return null
  }
  // A root that only arrived through an update has no type yet: view it as a map.
  return doc.getMap(name)
}

/** Run one read of client content; report instead of throwing if it fails, so one value that
 * cannot be read does not hide the rest of the timeline. */
function guarded<T> (read: () => T, fallback: T, path: string, problems: Problem[]): T {
  try {
    return read()
  } catch (error) {
    const name = error instanceof Error ? error.name : typeof error
    problems.push({ path, message: `unreadable value (${name}); ignored` })
    return fallback
  }
}

function readEntities (
  root: Y.Map<unknown> | null, rootName: RootName, label: string, problems: Problem[]
): Map<string, Fields> {
  const entities = new Map<string, Fields>()
  if (root === null) return entities
  const keys = guarded(() => [...root.keys()], [], rootName, problems)
  // Sorted so problems and results never depend on the map's key order.
  for (const key of keys.sort(compareStrings)) {
    const path = `${rootName}/${key}`
    const value = guarded(() => root.get(key), INVALID, path, problems)
    if (value === INVALID) continue
    if (!(value instanceof Y.Map)) {
      problems.push({ path, message: `expected a map, got ${describe(value)}; ${label} skipped` })
      continue
    }
    const entity = guarded(() => readEntity(value, path, FIELDS[rootName], problems, label), null, path, problems)
    if (entity !== null) entities.set(key, entity)
  }
  return entities
}

/** Field values of one map by the `Field` policy; `null` if a required one is bad. */
function readEntity (
  entry: Y.Map<unknown> | null, path: string, fields: readonly Field[], problems: Problem[], label: string
): Fields | null {
  const values: Fields = {}
  let complete = true
  for (const field of fields) {
    const fieldPath = `${path}/${field.name}`
    const has = entry !== null && entry.has(field.name)
    const raw = has && entry !== null ? entry.get(field.name) : undefined
    const present = has && !(field.nullable && (raw === null || raw === undefined))
    const value = present ? field.check(raw) : INVALID
    if (value !== INVALID) {
      values[field.name] = value
      continue
    }
    values[field.name] = field.default
    const outcome = field.required ? `${label} skipped` : `using ${field.defaultText}`
    if (present) {
      problems.push({ path: fieldPath, message: `expected ${field.expected}, got ${describe(raw)}; ${outcome}` })
    } else if (field.required) {
      problems.push({ path: fieldPath, message: `missing; ${outcome}` })
    }
    complete = complete && !field.required
  }
  return complete ? values : null
}

/** Drop a reference to an asset that does not exist (deleted, or never synced). */
function resolveAssetRef (
  fields: Fields, name: string, path: string, assetIds: Set<string>, problems: Problem[]
): Fields {
  const ref = fields[name]
  if (typeof ref !== 'string' || assetIds.has(ref)) return fields
  problems.push({ path: `${path}/${name}`, message: `unknown asset ${pyStringRepr(ref)}; using null` })
  return { ...fields, [name]: null }
}

function resolveClips (
  rawClips: Map<string, Fields>, tracks: Track[], assetIds: Set<string>, problems: Problem[]
): Clip[] {
  const position = new Map(tracks.map((track, index) => [track.id, index]))
  const clips: Clip[] = []
  for (const [id, raw] of rawClips) {
    const path = `clips/${id}`
    const trackId = raw['track'] as string
    if (!position.has(trackId)) {
      problems.push({ path: `${path}/track`, message: `unknown track ${pyStringRepr(trackId)}; clip skipped` })
      continue
    }
    const fields = resolveAssetRef(raw, 'asset', path, assetIds, problems)
    clips.push({ id, ...fields } as unknown as Clip)
  }
  const at = (clip: Clip): number => position.get(clip.track) ?? 0
  clips.sort((a, b) => at(a) - at(b) || a.start_ms - b.start_ms || compareStrings(a.id, b.id))
  return clips
}

export type { Asset, Clip, Problem, ProjectInfo, Timeline, Track }
