// Browser scenarios of the inspector, run by tests/browser/test_inspector.py:
//   node scenarios.mjs SCENARIO '{"base": "http://127.0.0.1:PORT", "secret": ..., ...}'
// Each opens two browser contexts as two users. Result: one JSON line `{"result": ...}`.
import {
  WAIT_MS, clipSeenAt, editStartedAt, finish, forgetSeen, launch, loadSdk, log, median, mintToken,
  nowMs, openInspector, savedState, step, trackIdByName, uiAddClip, uiAddTrack, uiDragClip,
  uiMoveClip, waitStatus, watchClips
} from './harness.mjs'

const [scenario, rawConfig] = process.argv.slice(2)
const config = JSON.parse(rawConfig)
const token = (user, ttlS) => mintToken(config.secret, user, ttlS).token

async function expectText (locator, pattern) {
  await locator.filter({ hasText: pattern }).first().waitFor({ timeout: WAIT_MS })
}

// --- UI and SDK edits converge -------------------------------------------------------------------

async function converge (browser) {
  const { base, project } = config
  const alice = await openInspector(browser, base, token('alice'), project)
  const bob = await openInspector(browser, base, token('bob'), project)
  await watchClips(alice.page)
  await watchClips(bob.page)
  const { sdk, WebSocket } = await loadSdk()
  const carol = sdk.connect({
    url: `${base.replace('http', 'ws')}/ws`, projectId: project, getToken: () => token('carol'),
    saved: true, WebSocketPolyfill: WebSocket, disableBc: true
  })
  await carol.whenSynced()
  carol.awareness.setLocalStateField('user', { id: 'carol', name: 'carol' })
  const sdkSees = (predicate) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the SDK client did not converge')), WAIT_MS)
    const check = () => {
      if (!predicate(sdk.readTimeline(carol.doc))) return
      clearTimeout(timer)
      carol.doc.off('update', check)
      resolve(nowMs())
    }
    carol.doc.on('update', check)
    check()
  })
  const ui = []
  const viaSdk = []
  // Alice builds tracks through the page; Bob's page and the SDK client follow.
  const video = await uiAddTrack(alice.page, 'video', 'Video 1')
  const audio = await uiAddTrack(alice.page, 'audio', 'Music')
  const subs = await uiAddTrack(alice.page, 'subtitle', 'Subtitles')
  await trackIdByName(bob.page, 'Subtitles')
  for (let i = 0; i < 4; i++) {
    const text = `shot ${i + 1}`
    const startMs = i * 2500
    const sdkSaw = sdkSees((t) => t.clips.some((c) => c.text === text))
    await uiAddClip(alice.page, { trackId: video, kind: 'video', startMs, durationMs: 2300, text })
    const t0 = await editStartedAt(alice.page)
    const tBob = await clipSeenAt(bob.page, text, startMs, video)
    ui.push({ edit: `ui add clip ${i + 1}`, page_ms: tBob - t0, sdk_ms: (await sdkSaw) - t0 })
  }
  // Bob moves a clip with the form and drags another; Alice's page follows.
  const shot2 = await bob.page.locator('#timeline .clip', { hasText: 'shot 2' }).getAttribute('data-clip-id')
  await uiMoveClip(bob.page, shot2, 2700)
  let t0 = await editStartedAt(bob.page)
  ui.push({ edit: 'ui move clip', page_ms: (await clipSeenAt(alice.page, 'shot 2', 2700, video)) - t0 })
  const shot4 = await bob.page.locator('#timeline .clip', { hasText: 'shot 4' }).getAttribute('data-clip-id')
  // At the default zoom of 40 px/s, 40 px is one second: shot 4 goes from 7500 to 8500 ms.
  await uiDragClip(bob.page, shot4, 40)
  t0 = await editStartedAt(bob.page)
  ui.push({ edit: 'ui drag clip', page_ms: (await clipSeenAt(alice.page, 'shot 4', 8500, video)) - t0 })
  // The SDK client adds music and subtitles; both pages follow.
  const sdkClips = [
    { track: audio, kind: 'audio', start_ms: 0, duration_ms: 9000, text: 'score' },
    { track: subs, kind: 'subtitle', start_ms: 500, duration_ms: 1800, text: 'Hello there' },
    { track: subs, kind: 'subtitle', start_ms: 3000, duration_ms: 2000, text: 'General Kenobi' }
  ]
  for (const clip of sdkClips) {
    const t = nowMs()
    sdk.addClip(carol.doc, clip)
    const [ta, tb] = await Promise.all([
      clipSeenAt(alice.page, clip.text, clip.start_ms, clip.track),
      clipSeenAt(bob.page, clip.text, clip.start_ms, clip.track)
    ])
    viaSdk.push({ edit: `sdk add ${clip.text}`, alice_ms: ta - t, bob_ms: tb - t })
  }
  // Presence: each page lists the others; Bob selects a clip, which Alice sees outlined.
  await expectText(alice.page.getByTestId('collaborators'), 'bob')
  await expectText(alice.page.getByTestId('collaborators'), 'carol')
  await expectText(bob.page.getByTestId('collaborators'), 'alice')
  // A job's progress arrives as presence from the server.
  await step('show-job')
  await expectText(alice.page.getByTestId('jobs'), 'subtitles')
  await alice.page.locator('[data-testid=job] progress').waitFor()
  await expectText(alice.page.getByTestId('credits'), '500 available')
  await bob.page.locator('#timeline .clip', { hasText: 'shot 3' }).click()
  if (config.screenshot) {
    await alice.page.locator('#timeline .clip[style*="box-shadow"]').waitFor()
    await alice.page.screenshot({ path: config.screenshot, fullPage: false })
  }
  // A client that withdraws its presence disappears from the pages' lists. (It waits for that
  // before it disconnects: the server drops a withdrawal still in its 10 ms coalescing window
  // when the socket closes in that window.)
  carol.awareness.setLocalState(null)
  await alice.page.getByTestId('collaborators').filter({ hasNotText: 'carol' }).waitFor()
  carol.destroy()
  // Converged: both pages and the server hold the same timeline.
  const clipsOf = (page) => page.$$eval('#timeline .clip', (els) => els
    .map((el) => `${el.dataset.trackId}|${el.dataset.startMs}|${el.dataset.durationMs}|${el.textContent}`).sort())
  const [a, b] = [await clipsOf(alice.page), await clipsOf(bob.page)]
  const allPage = ui.map((u) => u.page_ms)
  const allSdk = viaSdk.flatMap((s) => [s.alice_ms, s.bob_ms])
  const toSdk = ui.filter((u) => u.sdk_ms !== undefined).map((u) => u.sdk_ms)
  // A closed tab leaves the others' lists.
  await bob.context.close()
  await alice.page.getByTestId('collaborators').filter({ hasNotText: 'bob' }).waitFor()
  return {
    alice_clips: a,
    bob_clips: b,
    ui,
    sdk: viaSdk,
    ui_to_page_ms: { median: median(allPage), max: Math.max(...allPage) },
    ui_to_sdk_ms: { median: median(toSdk), max: Math.max(...toSdk) },
    sdk_to_pages_ms: { median: median(allSdk), max: Math.max(...allSdk) }
  }
}

// --- a restore in one page reaches the other live ----------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function restore (browser) {
  const { base, project } = config
  const alice = await openInspector(browser, base, token('alice'), project)
  const bob = await openInspector(browser, base, token('bob'), project)
  await watchClips(bob.page)
  const video = await uiAddTrack(alice.page, 'video', 'Main')
  await uiAddClip(alice.page, { trackId: video, kind: 'video', startMs: 0, durationMs: 2000, text: 'opening' })
  await uiAddClip(alice.page, { trackId: video, kind: 'video', startMs: 3000, durationMs: 2000, text: 'closing' })
  await alice.page.getByTestId('version-label').fill('first cut')
  await alice.page.getByTestId('save-version').click()
  await expectText(alice.page.getByTestId('versions'), 'first cut')
  // Bob changes things after the version; Alice sees them.
  await clipSeenAt(bob.page, 'closing', 3000, video)
  const broll = await uiAddTrack(bob.page, 'overlay', 'B-roll')
  await uiAddClip(bob.page, { trackId: broll, kind: 'image', startMs: 500, durationMs: 1000, text: 'logo' })
  const opening = await bob.page.locator('#timeline .clip', { hasText: 'opening' }).getAttribute('data-clip-id')
  await uiMoveClip(bob.page, opening, 1000)
  await alice.page.locator('#timeline .clip[data-start-ms="1000"]', { hasText: 'opening' }).waitFor()
  await alice.page.locator('#timeline .clip', { hasText: 'logo' }).waitFor()
  // Alice previews the version, then restores it from the preview.
  await bob.page.evaluate(() => { window.__sameDocument = true })
  const version = alice.page.getByTestId('version').filter({ hasText: 'first cut' })
  await version.getByTestId('version-preview-button').click()
  const preview = alice.page.getByTestId('version-preview')
  await preview.locator('.clip').nth(1).waitFor()
  const previewClips = await preview.locator('.clip').evaluateAll((els) => els.map((el) => `${el.textContent}@${el.dataset.startMs}`).sort())
  const liveClipsBefore = await alice.page.locator('#timeline .clip').count()
  await forgetSeen(bob.page)
  const t0 = nowMs()
  await alice.page.getByTestId('preview-restore').click()
  const seen = await clipSeenAt(bob.page, 'opening', 0, video)
  await bob.page.locator('#timeline .clip', { hasText: 'logo' }).waitFor({ state: 'detached' })
  await bob.page.locator('#timeline .track-name', { hasText: 'B-roll' }).waitFor({ state: 'detached' })
  const bobClips = await bob.page.locator('#timeline .clip').evaluateAll((els) => els.map((el) => `${el.textContent}@${el.dataset.startMs}`).sort())
  const sameDocument = await bob.page.evaluate(() => window.__sameDocument === true)
  // The restore is in Bob's history too, without a reload.
  await expectText(bob.page.getByTestId('versions'), 'restored #')
  // Then the server goes away: both pages say so.
  await step('stop-server')
  await alice.page.getByTestId('version-label').fill('after the end')
  await alice.page.getByTestId('save-version').click()
  await alice.page.locator('[data-testid=error][data-code=server_unreachable]').waitFor()
  const errorText = await alice.page.getByTestId('error').textContent()
  await waitStatus(bob.page, 'offline')
  return {
    preview_clips: previewClips,
    live_clips_before: liveClipsBefore,
    bob_clips_after: bobClips,
    same_document: sameDocument,
    restore_to_other_page_ms: seen - t0,
    error_text: errorText
  }
}

// --- an expired token is replaced; edits made meanwhile survive ---------------------------------

async function tokenRefresh (browser) {
  const { base, project } = config
  const short = mintToken(config.secret, 'alice', config.short_ttl_s)
  const alice = await openInspector(browser, base, short.token, project)
  const bob = await openInspector(browser, base, token('bob'), project)
  const before = await uiAddTrack(alice.page, 'video', 'Before')
  await trackIdByName(bob.page, 'Before')
  // Let the token expire while the socket stays open (the server checks tokens when a
  // socket opens), then the server closes the socket as a restart does.
  const expiredInMs = short.exp * 1000 + 300 - Date.now()
  if (expiredInMs > config.short_ttl_s * 1000 + 1000) throw new Error('clock skew')
  await sleep(Math.max(0, expiredInMs))
  await step('drop-alice')
  await alice.page.locator('[data-testid=notice][data-kind=auth]').waitFor()
  await expectText(alice.page.getByTestId('connection-status'), 'Waiting for a new token')
  const socketsWhileWaiting = alice.sockets.length
  // Edits while the page waits for a token: kept in the document, not sent.
  const offline = await uiAddTrack(alice.page, 'audio', 'Offline')
  await uiAddClip(alice.page, { trackId: offline, kind: 'audio', startMs: 250, durationMs: 1500, text: 'unsent' })
  await uiMoveClip(alice.page, await alice.page.locator('#timeline .clip', { hasText: 'unsent' }).getAttribute('data-clip-id'), 750)
  await alice.page.locator('#timeline .clip[data-start-ms="750"]', { hasText: 'unsent' }).waitFor()
  const savedWhileWaiting = await savedState(alice.page)
  const bobSawEarly = await bob.page.locator('#timeline .track-name', { hasText: 'Offline' }).count()
  const waitedFor = await step('sockets-of-alice')
  await sleep(500)
  const socketsAfterWait = alice.sockets.length
  // A new token: the connection resumes and the edits reach the server and Bob.
  await alice.page.getByTestId('token-input').fill(token('alice'))
  await alice.page.getByTestId('token-apply').click()
  await waitStatus(alice.page, 'synced')
  await bob.page.locator('#timeline .clip[data-start-ms="750"]', { hasText: 'unsent' }).waitFor()
  await alice.page.locator('[data-testid=saved-state][data-state=saved]').waitFor()
  return {
    before_track: before,
    saved_while_waiting: savedWhileWaiting,
    bob_saw_offline_edits_early: bobSawEarly,
    alice_sockets: alice.sockets.length,
    alice_sockets_while_waiting: [socketsWhileWaiting, socketsAfterWait],
    server_connections_of_alice_while_waiting: waitedFor.connections
  }
}

// --- a removed member is told, and stops ---------------------------------------------------------

async function removed (browser) {
  const { base, project } = config
  const alice = await openInspector(browser, base, token('alice'), project)
  const bob = await openInspector(browser, base, token('bob'), project)
  const track = await uiAddTrack(bob.page, 'video', 'Bob was here')
  await trackIdByName(alice.page, 'Bob was here')
  const socketsBefore = bob.sockets.length
  await step('remove-bob')
  await bob.page.locator('[data-testid=notice][data-kind=access_removed]').waitFor()
  await waitStatus(bob.page, 'denied')
  const notice = await bob.page.getByTestId('notice').textContent()
  const editingOff = await bob.page.locator('#add-track-form.disabled').count()
  // Longer than the longest reconnect back-off (2.5 s): any further attempt would have happened.
  await sleep(config.observe_ms)
  const counted = await step('count-closes')
  // The project is gone from Bob's list; opening it again is a clear 404, and no socket.
  await bob.page.getByTestId('project-list').filter({ hasNotText: 'Removal' }).waitFor()
  await bob.page.evaluate(() => { location.hash = '' })
  await bob.page.evaluate((id) => { location.hash = `project=${id}` }, project)
  await bob.page.locator('[data-testid=error][data-code=project_not_found]').waitFor()
  const notFound = await bob.page.getByTestId('error').textContent()
  await sleep(300)
  return {
    track,
    notice,
    editing_off: editingOff,
    not_found: notFound,
    bob_sockets_before_removal: socketsBefore,
    bob_sockets_after: bob.sockets.length,
    server_4403_closes: counted.closes_4403,
    alice_status: await alice.page.getByTestId('connection-status').getAttribute('data-status')
  }
}

// --- "Saved" only after the server's ack ----------------------------------------------------------

async function saved (browser) {
  const { base, project } = config
  const alice = await openInspector(browser, base, token('alice'), project)
  const bob = await openInspector(browser, base, token('bob'), project)
  await alice.page.locator('[data-testid=saved-state][data-state=saved]').waitFor()
  const socket = alice.sockets[alice.sockets.length - 1]
  await step('lock-updates')
  await uiAddTrack(alice.page, 'video', 'Pending')
  await alice.page.locator('[data-testid=saved-state][data-state=unsaved]').waitFor()
  const acksAtEdit = socket.saved.length
  // The edit is live for Bob at once; only its durability waits for the database.
  await trackIdByName(bob.page, 'Pending')
  await sleep(config.hold_ms)
  const whileLocked = { state: await savedState(alice.page), acks: socket.saved.length - acksAtEdit }
  const tUnlock = nowMs()
  await step('unlock-updates')
  await alice.page.locator('[data-testid=saved-state][data-state=saved]').waitFor()
  const tSaved = nowMs()
  return {
    while_locked: whileLocked,
    acks_after_unlock: socket.saved.length - acksAtEdit,
    first_ack_after_unlock_ms: socket.saved.length > acksAtEdit ? socket.saved[acksAtEdit] - tUnlock : null,
    saved_seen_after_unlock_ms: tSaved - tUnlock,
    bob_state: await savedState(bob.page)
  }
}

const scenarios = { converge, restore, token: tokenRefresh, removed, saved }

const run = scenarios[scenario]
if (run === undefined) {
  log(`unknown scenario ${scenario}`)
  process.exit(2)
}
const browser = await launch()
try {
  finish(await run(browser))
} finally {
  await browser.close()
}
process.exit(0)
