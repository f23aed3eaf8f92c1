#!/usr/bin/env node
// Drives the official Yjs websocket client (y-websocket's WebsocketProvider) against a server.
//
//   node timeline_clients.mjs --url ws://HOST:PORT/ws --room PROJECT_ID --token T1 --token T2 ...
//        [--scenario edit|viewer] [--viewer-token T] [--expect ROOT/KEY ...] [--timeout-ms N]
//
// scenario "edit" (default): one provider (and Y.Doc) per --token. Every client adds its own
// track and clips, then all clients edit the same clip at once (move, trim, volume) while one
// client deletes a clip another is moving. The script waits until every doc has the same state
// vector and the same content (and every --expect ROOT/KEY is present, for edits made by other
// clients), checks that every client sees every other client's awareness state, and prints
//   {"roots": {...}, "awareness": [[names seen by client 0], ...], "denied": [...]}
//
// scenario "viewer": one editor (--token) and one viewer (--viewer-token). The viewer edits; the
// script waits for the permission-denied auth message (y-websocket reports it with
// console.warn), then the editor edits and the viewer must still receive that. Prints
//   {"roots": <editor doc>, "viewerRoots": <viewer doc>, "denied": [...]}
//
// Progress goes to stderr, the result to stdout. Exit 0 on success, 1 on timeout or failure,
// 2 on bad arguments.

import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const ROOTS = ['project', 'tracks', 'clips', 'assets']

const usage = (message) => {
  process.stderr.write(`${message}\n`)
  process.exit(2)
}

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    room: { type: 'string' },
    token: { type: 'string', multiple: true, default: [] },
    'viewer-token': { type: 'string', multiple: true, default: [] },
    scenario: { type: 'string', default: 'edit' },
    expect: { type: 'string', multiple: true, default: [] },
    tracks: { type: 'string' },
    'timeout-ms': { type: 'string', default: '30000' }
  }
})
if (!args.url || !args.room) usage('--url and --room are required')
const timeoutMs = Number(args['timeout-ms'])
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) usage('--timeout-ms must be a positive number')
const deadline = Date.now() + timeoutMs

// y-websocket reports a permission-denied auth message only through console.warn, as
// "Permission denied to access <url>.\n<reason>". Keep the reason; the url carries the token.
const denied = []
const originalWarn = console.warn
console.warn = (...parts) => {
  const text = parts.map(String).join(' ')
  if (text.startsWith('Permission denied')) {
    const reason = text.slice(text.indexOf('\n') + 1)
    denied.push(reason)
    process.stderr.write(`[interop] permission denied: ${reason}\n`)
    return
  }
  originalWarn(...parts)
}

const log = (message) => process.stderr.write(`[interop] ${message}\n`)

const fail = (message) => {
  process.stderr.write(`[interop] FAILED: ${message}\n`)
  process.exit(1)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Poll ``predicate`` until it holds; fail the run once the global deadline has passed. */
const waitFor = async (label, predicate, describe = () => '') => {
  while (!predicate()) {
    if (Date.now() > deadline) fail(`timed out waiting for ${label} ${describe()}`.trim())
    await sleep(10)
  }
}

/** Object keys sorted at every level, so equal content gives equal JSON text. */
const canonical = (value) => {
  if (Array.isArray(value)) return value.map(canonical)
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(
      Object.keys(value).sort().map((key) => [key, canonical(value[key])])
    )
  }
  return value
}

const rootsOf = (doc) => canonical(Object.fromEntries(ROOTS.map((r) => [r, doc.getMap(r).toJSON()])))

const stateVector = (doc) => Buffer.from(Y.encodeStateVector(doc)).toString('base64')

const connect = (token, name) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(args.url, args.room, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket,
    // All clients share this process: without this they would also sync through a
    // BroadcastChannel and the test would not prove anything about the server.
    disableBc: true
  })
  provider.on('connection-close', (event) => {
    if (event) log(`${name}: connection closed ${event.code} ${event.reason}`)
  })
  provider.awareness.setLocalStateField('user', { name })
  return { name, doc, provider }
}

const newMap = (fields) => new Y.Map(Object.entries(fields))

const track = (kind, name, order) =>
  newMap({ kind, name, order, muted: false, locked: false })

const clip = (trackId, kind, startMs, durationMs, extra = {}) =>
  newMap({
    track: trackId,
    kind,
    start_ms: startMs,
    duration_ms: durationMs,
    source_in_ms: 0,
    volume: 1,
    ...extra
  })

const hasKey = (doc, spec) => {
  const [root, ...rest] = spec.split('/')
  return doc.getMap(root).has(rest.join('/'))
}

const waitSynced = (clients) =>
  waitFor('sync step 2 from the server', () => clients.every((c) => c.provider.synced), () =>
    clients.filter((c) => !c.provider.synced).map((c) => c.name).join(', '))

/** Every client's awareness holds every other client's state with its name. */
const awarenessNames = (client) =>
  [...client.provider.awareness.getStates().values()]
    .map((state) => state?.user?.name)
    .filter((name) => typeof name === 'string')
    .sort()

const waitAwareness = (clients) => {
  const everyone = clients.map((c) => c.name).sort()
  return waitFor(
    'every client to see every other client in awareness',
    () => clients.every((c) => everyone.every((n) => awarenessNames(c).includes(n))),
    () => JSON.stringify(clients.map((c) => [c.name, awarenessNames(c)]))
  )
}

const trackId = (i) => `t-js${i}`
const clipId = (i, which) => `c-js${i}-${which}`

const editScenario = async (clients) => {
  const k = clients.length
  if (k < 2) usage('the edit scenario needs at least two --token')
  await waitSynced(clients)
  log(`${k} clients synced`)

  // Round 1, concurrent: nobody has seen anyone else's changes yet (all run in this tick).
  clients.forEach(({ doc }, i) => {
    doc.transact(() => {
      const tracks = doc.getMap('tracks')
      const clips = doc.getMap('clips')
      tracks.set(trackId(i), track(i % 2 ? 'audio' : 'video', `JS ${i}`, `k${String(i).padStart(3, '0')}`))
      const extra = {}
      if (i === 0) {
        doc.getMap('assets').set('a-js0', newMap({
          kind: 'video', name: 'intro.mp4', uri: 's3://media/intro.mp4', duration_ms: 60000, origin: 'upload'
        }))
        extra.asset = 'a-js0'
      }
      clips.set(clipId(i, 'a'), clip(trackId(i), i % 2 ? 'audio' : 'video', 0, 4000, extra))
      clips.set(clipId(i, 'b'), clip(trackId(i), i % 2 ? 'audio' : 'video', 4000, 2000))
    })
  })
  const round1 = clients.flatMap((_, i) => [`tracks/${trackId(i)}`, `clips/${clipId(i, 'a')}`, `clips/${clipId(i, 'b')}`])
  await waitFor('every client to see every track and clip', () =>
    clients.every(({ doc }) => round1.every((spec) => hasKey(doc, spec))))
  log('round 1 delivered')

  // Round 2, concurrent edits of the same clip: every client moves it (same field: one value
  // wins everywhere), one trims it and one changes its volume (other fields: both survive),
  // while the last client deletes a clip that client 1 (or 0) moves at the same moment.
  const shared = clipId(0, 'a')
  const doomed = clipId(1, 'b')
  const deleter = k - 1
  const mover = deleter === 1 ? 0 : 1
  clients.forEach(({ doc }, i) => {
    doc.transact(() => {
      const clips = doc.getMap('clips')
      clips.get(shared).set('start_ms', 10000 + 500 * i)
      if (i === 1 % k) {
        clips.get(shared).set('duration_ms', 2500)
        clips.get(shared).set('source_in_ms', 1500)
      }
      if (i === 2 % k) clips.get(shared).set('volume', 0.5)
      if (i === mover) clips.get(doomed).set('start_ms', 20000)
      if (i === deleter) clips.delete(doomed)
      if (i === 0) doc.getMap('tracks').get(trackId(0)).set('name', 'Main')
    })
  })
  log('round 2 made')

  const converged = () => {
    const first = clients[0]
    const sv = stateVector(first.doc)
    const json = JSON.stringify(rootsOf(first.doc))
    return clients.every(({ doc }) =>
      args.expect.every((spec) => hasKey(doc, spec)) &&
      stateVector(doc) === sv && JSON.stringify(rootsOf(doc)) === json)
  }
  await waitFor('all documents to converge', converged, () =>
    JSON.stringify(clients.map((c) => ({ client: c.name, roots: rootsOf(c.doc) }))))
  log('documents converged')
  await waitAwareness(clients)
  log('awareness complete')
  return {
    roots: rootsOf(clients[0].doc),
    awareness: clients.map(awarenessNames),
    denied
  }
}

const viewerScenario = async (editors, viewers) => {
  if (editors.length !== 1 || viewers.length !== 1) {
    usage('the viewer scenario needs exactly one --token and one --viewer-token')
  }
  const [editor] = editors
  const [viewer] = viewers
  await waitSynced([editor, viewer])
  log('editor and viewer synced')
  viewer.doc.transact(() => {
    viewer.doc.getMap('tracks').set('t-viewer', track('video', 'Viewer', 'k500'))
    viewer.doc.getMap('project').set('title', 'Renamed by a viewer')
  })
  await waitFor('the permission-denied auth message', () => denied.length > 0)
    editor.doc.getMap('tracks').set('t-editor', track('audio', 'Editor', 'k100'))
  await waitFor('the viewer to receive the editor\'s track', () => hasKey(viewer.doc, 'tracks/t-editor'))
  await waitAwareness([editor, viewer])
  return { roots: rootsOf(editor.doc), viewerRoots: rootsOf(viewer.doc), denied }
}

// scenario "watch": one provider per --token syncs, prints "synced" on stderr, and waits until
// its tracks are exactly --tracks (comma-separated ids), e.g. while the server restores a
// version; then prints {"roots": ...}.
const watchScenario = async (clients) => {
  await waitSynced(clients)
  log('synced')
  const want = (args.tracks ?? '').split(',').filter(Boolean).sort().join(',')
  const have = (client) => [...client.doc.getMap('tracks').keys()].sort().join(',')
  await waitFor(`tracks to be ${want}`, () => clients.every((c) => have(c) === want),
    () => clients.map(have).join(' | '))
  return { roots: rootsOf(clients[0].doc) }
}

const main = async () => {
  const editors = args.token.map((token, i) => connect(token, `js-${i}`))
  const viewers = args['viewer-token'].map((token, i) => connect(token, `js-viewer-${i}`))
  let result
  if (args.scenario === 'edit') {
    if (viewers.length) usage('the edit scenario takes no --viewer-token')
    result = await editScenario(editors)
  } else if (args.scenario === 'viewer') {
    result = await viewerScenario(editors, viewers)
  } else if (args.scenario === 'watch') {
    result = await watchScenario(editors)
  } else {
    usage(`unknown scenario ${args.scenario}`)
  }
  for (const { provider } of [...editors, ...viewers]) provider.destroy()
  // Exit once stdout is flushed (a pipe is written asynchronously), even if a socket lingers.
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0))
}

main().catch((error) => fail(error?.stack ?? String(error)))
