import assert from 'node:assert/strict'
import { test } from 'node:test'

import { colorFor, splitPresence } from '../presence.js'

test('people and jobs are told apart; bad entries are skipped', () => {
  const states = new Map<number, unknown>([
    [1, { user: { id: 'alice', name: 'Alice', color: '#123456' }, selection: 'c1' }],
    [2, { user: { id: 'bob' } }],
    [3, { cursor: 4 }],
    [4, null],
    [5, { user: { id: 42 } }],
    [0x80000001, { job: { id: 'j1', kind: 'render', user_id: 'alice', status: 'running', progress: 1.7, stage: 'encoding' } }],
    [0x80000002, { job: { kind: 'no id' } }],
    [6, { user: { id: 'carol', color: 'red; background: url(x)' } }]
  ])
  const { collaborators, jobs } = splitPresence(states, 2)
  assert.deepEqual(collaborators.map((c) => [c.clientId, c.userId, c.name, c.self, c.selection]), [
    [2, 'bob', 'bob', true, null],
    [1, 'alice', 'Alice', false, 'c1'],
    [6, 'carol', 'carol', false, null]
  ])
  assert.equal(collaborators[1]?.color, '#123456')
  // A colour that is not a plain hex colour is never put into a style.
  assert.equal(collaborators[2]?.color, colorFor('carol'))
  assert.deepEqual(jobs, [{ clientId: 0x80000001, id: 'j1', kind: 'render', userId: 'alice', status: 'running', progress: 1, stage: 'encoding' }])
})

test('the colour of a user is the same everywhere', () => {
  assert.equal(colorFor('alice'), colorFor('alice'))
  assert.match(colorFor(''), /^#[0-9a-f]{6}$/)
})
