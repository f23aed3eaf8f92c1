import assert from 'node:assert/strict'
import { test } from 'node:test'

import { DEFAULT_BACKOFF, closeAction, retryDelayMs } from '../../src/index.js'

test('close codes map to the documented action', () => {
  assert.deepEqual(closeAction(4401), { kind: 'refresh_token' })
  assert.deepEqual(closeAction(4403), { kind: 'stop', status: 'denied' })
  assert.deepEqual(closeAction(4404), { kind: 'stop', status: 'not_found' })
  assert.deepEqual(closeAction(4400), { kind: 'stop', status: 'denied' })
  assert.deepEqual(closeAction(1009), { kind: 'stop', status: 'denied' })
  assert.deepEqual(closeAction(4499), { kind: 'stop', status: 'denied' })
  assert.deepEqual(closeAction(4529), { kind: 'retry', status: 'rate_limited' })
  for (const code of [4508, 1011, 1012, 1013, 1006, 1000, 1001, 4500]) {
    assert.deepEqual(closeAction(code), { kind: 'retry', status: 'offline' }, String(code))
  }
})

test('retry delays double up to their ceiling, with jitter in the upper half', () => {
  const low = (): number => 0
  const high = (): number => 1
  assert.equal(retryDelayMs(0, false, DEFAULT_BACKOFF, low), 50)
  assert.equal(retryDelayMs(0, false, DEFAULT_BACKOFF, high), 100)
  assert.equal(retryDelayMs(3, false, DEFAULT_BACKOFF, high), 800)
  assert.equal(retryDelayMs(50, false, DEFAULT_BACKOFF, high), DEFAULT_BACKOFF.maxMs)
  assert.equal(retryDelayMs(0, true, DEFAULT_BACKOFF, high), DEFAULT_BACKOFF.rateLimitedInitialMs)
  assert.equal(retryDelayMs(50, true, DEFAULT_BACKOFF, low), DEFAULT_BACKOFF.rateLimitedMaxMs / 2)
})
