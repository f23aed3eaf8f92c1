import assert from 'node:assert/strict'
import { test } from 'node:test'

import { UnsavedTracker } from '../../src/index.js'

test('an insert is unsaved until the durable state vector reaches its clock', () => {
  const tracker = new UnsavedTracker()
  assert.equal(tracker.unsaved, false)
  tracker.local(7, 0, 3, false)
  assert.equal(tracker.unsaved, true)
  tracker.durable(new Map([[7, 2]]))
  assert.equal(tracker.unsaved, true)
  tracker.durable(new Map([[8, 9]]))
  assert.equal(tracker.unsaved, true)
  tracker.durable(new Map([[7, 3]]))
  assert.equal(tracker.unsaved, false)
})

test('every own client id must be covered (the id changes after a clash)', () => {
  const tracker = new UnsavedTracker()
  tracker.local(1, 0, 2, false)
  tracker.local(2, 0, 1, false)
  tracker.durable(new Map([[2, 1]]))
  assert.equal(tracker.unsaved, true)
  tracker.durable(new Map([[1, 2], [2, 1]]))
  assert.equal(tracker.unsaved, false)
})

test('a delete-only edit is saved once a later insert is durable, not before', () => {
  const tracker = new UnsavedTracker()
  tracker.local(1, 0, 4, false)
  tracker.durable(new Map([[1, 4]]))
  tracker.local(1, 4, 4, true)
  assert.equal(tracker.unsaved, true)
  tracker.durable(new Map([[1, 4]]))
  assert.equal(tracker.unsaved, true, 'the state vector cannot show a delete')
  tracker.local(1, 4, 5, false)
  tracker.durable(new Map([[1, 5]]))
  assert.equal(tracker.unsaved, false)
})

test('a transaction that changed nothing is not an unsaved change', () => {
  const tracker = new UnsavedTracker()
  tracker.local(1, 3, 3, false)
  assert.equal(tracker.unsaved, false)
})
