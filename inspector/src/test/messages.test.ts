import assert from 'node:assert/strict'
import { test } from 'node:test'

import { apiFailure, closeNotice, describeFailure, unreachable } from '../messages.js'

test("the server's error code and message are kept", () => {
  const failure = apiFailure(403, { error: { code: 'forbidden', message: 'this needs the editor role' } })
  assert.deepEqual(failure, { status: 403, code: 'forbidden', message: 'this needs the editor role' })
  assert.equal(describeFailure(failure), 'Error 403 forbidden: this needs the editor role')
})

test('a body without the error shape still says the status', () => {
  assert.deepEqual(apiFailure(502, '<html>'), { status: 502, code: 'http_502', message: 'the server answered 502' })
  assert.deepEqual(apiFailure(500, { error: 'x' }), { status: 500, code: 'http_500', message: 'the server answered 500' })
  assert.equal(apiFailure(422, { error: { code: 'invalid_request' } }).message, '')
})

test('a missing project and a dead server are worded for people', () => {
  const gone = apiFailure(404, { error: { code: 'project_not_found', message: 'no such project' } })
  assert.match(describeFailure(gone), /^Project not found \(404 project_not_found\)/)
  const dead = unreachable('http://127.0.0.1:8000', 'Failed to fetch')
  assert.equal(dead.code, 'server_unreachable')
  assert.match(describeFailure(dead), /^Server unreachable: cannot reach the server at http:\/\/127\.0\.0\.1:8000/)
})

test('close codes map to what the person should know', () => {
  assert.equal(closeNotice(4403, 'removed from the project').kind, 'access_removed')
  assert.match(closeNotice(4403, '').text, /^Access removed/)
  assert.equal(closeNotice(4404, '').kind, 'not_found')
  assert.equal(closeNotice(4401, 'token_expired').kind, 'auth')
  assert.equal(closeNotice(4400, 'bad').kind, 'permanent')
  assert.equal(closeNotice(1009, '').kind, 'permanent')
  for (const code of [1006, 1011, 1012, 1013, 4508, 4529]) assert.equal(closeNotice(code, '').kind, 'retrying')
})
