// Browser scenarios of the inspector, run by tests/browser/test_inspector.py:
//   node scenarios.mjs SCENARIO '{"base": "http://127.0.0.1:PORT", "secret": ..., ...}'
// Each opens two browser contexts as two users. Result: one JSON line `{"result": ...}`.
import {
  WAIT_MS, clipSeenAt, editStartedAt, finish, launch, loadSdk, log, median, mintToken, nowMs,
  openInspector, savedState, step, trackIdByName, uiAddClip, uiAddTrack, uiDragClip, uiMoveClip,
  waitStatus, watchClips
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
  carol.destroy()
  // Converged: both pages and the server hold the same timeline.
  const clipsOf = (page) => page.$$eval('#timeline .clip', (els) => els
    .map((el) => `${el.dataset.trackId}|${el.dataset.startMs}|${el.dataset.durationMs}|${el.textContent}`).sort())
  const [a, b] = [await clipsOf(alice.page), await clipsOf(bob.page)]
  const allPage = ui.map((u) => u.page_ms)
  const allSdk = viaSdk.flatMap((s) => [s.alice_ms, s.bob_ms])
  return {
    alice_clips: a,
    bob_clips: b,
    ui,
    sdk: viaSdk,
    ui_to_page_ms: { median: median(allPage), max: Math.max(...allPage) },
    ui_to_sdk_ms: { median: median(ui.filter((u) => u.sdk_ms !== undefined).map((u) => u.sdk_ms)) },
    sdk_to_pages_ms: { median: median(allSdk), max: Math.max(...allSdk) }
  }
}

const scenarios = { converge }

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
