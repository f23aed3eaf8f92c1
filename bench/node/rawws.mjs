// A lean websocket client for load generation: just enough RFC 6455 for y-websocket over
// loopback (binary frames, close, ping), on a bare TCP socket. It skips what makes `ws`'s
// client cost as much CPU per connection as the servers under test spend per join: Node's
// HTTP client for the upgrade, option handling, the extension negotiation. It offers no
// compression (none of the servers measured accepts it by default). Same events and methods
// as the part of `ws` the generators use: open, message (a Buffer), close (code, reason),
// error; send, close, terminate, readyState.
import net from 'node:net'
import crypto from 'node:crypto'
import { EventEmitter } from 'node:events'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
const CLOSED = 3
const HEAD_END = Buffer.from('\r\n\r\n')

// Keys and masks from one pool of random bytes, refilled when used up.
let pool = Buffer.alloc(0)
let poolAt = 0
function random (n) {
  if (poolAt + n > pool.length) { pool = crypto.randomBytes(64 * 1024); poolAt = 0 }
  poolAt += n
  return pool.subarray(poolAt - n, poolAt)
}

export class RawWebSocket extends EventEmitter {
  static CONNECTING = CONNECTING
  static OPEN = OPEN
  static CLOSING = CLOSING
  static CLOSED = CLOSED

  constructor (url, { handshakeTimeout = 30000 } = {}) {
    super()
    const { hostname, port, pathname, search } = new URL(url)
    this.readyState = CONNECTING
    this._key = random(16).toString('base64')
    this._mask = Buffer.from(random(4))
    this._head = Buffer.alloc(0)
    this._buffer = null // unparsed frame bytes once open
    this._fragments = null
    this._closeCode = 1006
    this._closeReason = ''
    const socket = net.connect({ host: hostname, port: Number(port) || 80 })
    this._socket = socket
    socket.setNoDelay(true)
    this._timer = setTimeout(() => this._fail(new Error('handshake timed out')), handshakeTimeout)
    socket.on('connect', () => {
      socket.write(
        `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
        'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${this._key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    })
    socket.on('data', (data) => this._data(data))
    socket.on('error', (err) => this._fail(err))
    socket.on('close', () => this._closed())
  }

  _fail (err) {
    if (this.readyState === CLOSED) return
    this.emit('error', err)
    this._socket.destroy()
  }

  _closed () {
    clearTimeout(this._timer)
    if (this.readyState === CLOSED) return
    this.readyState = CLOSED
    this.emit('close', this._closeCode, this._closeReason)
  }

  _data (data) {
    if (this.readyState === CONNECTING) {
      const head = this._head.length ? Buffer.concat([this._head, data]) : data
      const end = head.indexOf(HEAD_END)
      if (end < 0) { this._head = head; return }
      const text = head.toString('latin1', 0, end)
      if (!text.startsWith('HTTP/1.1 101')) {
        return this._fail(new Error(`HTTP ${text.slice(9, 12)}`))
      }
      const accept = crypto.createHash('sha1').update(this._key + GUID).digest('base64')
      if (!new RegExp(`^sec-websocket-accept: *${accept.replace(/[+/]/g, '\\$&')}`, 'im').test(text)) {
        return this._fail(new Error('bad Sec-WebSocket-Accept'))
      }
      clearTimeout(this._timer)
      this.readyState = OPEN
      this._head = null
      this.emit('open')
      data = head.subarray(end + 4)
      if (data.length === 0) return
    }
    this._buffer = this._buffer && this._buffer.length ? Buffer.concat([this._buffer, data]) : data
    this._frames()
  }

  _frames () {
    let buf = this._buffer
    while (buf.length >= 2) {
      const fin = buf[0] & 0x80
      const opcode = buf[0] & 0x0f
      let length = buf[1] & 0x7f
      let at = 2
      if (length === 126) {
        if (buf.length < 4) break
        length = buf.readUInt16BE(2); at = 4
      } else if (length === 127) {
        if (buf.length < 10) break
        length = Number(buf.readBigUInt64BE(2)); at = 10
      }
      if (buf.length < at + length) break
      const payload = buf.subarray(at, at + length)
      buf = buf.subarray(at + length)
      this._frame(fin, opcode, payload)
      if (this.readyState === CLOSED) break
    }
    this._buffer = buf
  }

  _frame (fin, opcode, payload) {
    if (opcode === 0x2 || opcode === 0x1 || opcode === 0x0) {
      if (!fin || this._fragments) {
        (this._fragments ??= []).push(Buffer.from(payload))
        if (!fin) return
        payload = Buffer.concat(this._fragments)
        this._fragments = null
      }
      if (opcode === 0x2 || opcode === 0x0) this.emit('message', payload)
    } else if (opcode === 0x8) {
      this._closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005
      this._closeReason = payload.length > 2 ? payload.toString('utf8', 2) : ''
      if (this.readyState === OPEN) this._write(0x8, payload.subarray(0, 2))
      this.readyState = CLOSING
      this._socket.end()
    } else if (opcode === 0x9) {
      this._write(0xa, payload)
    }
  }

  _write (opcode, payload) {
    const length = payload.length
    const extra = length < 126 ? 0 : length < 65536 ? 2 : 8
    const frame = Buffer.allocUnsafe(6 + extra + length)
    frame[0] = 0x80 | opcode
    if (extra === 0) frame[1] = 0x80 | length
    else if (extra === 2) { frame[1] = 0x80 | 126; frame.writeUInt16BE(length, 2) } else { frame[1] = 0x80 | 127; frame.writeBigUInt64BE(BigInt(length), 2) }
    const mask = this._mask
    mask.copy(frame, 2 + extra)
    const at = 6 + extra
    for (let i = 0; i < length; i++) frame[at + i] = payload[i] ^ mask[i & 3]
    this._socket.write(frame)
  }

  send (payload) {
    if (this.readyState !== OPEN) throw new Error('not open')
    this._write(0x2, payload)
  }

  close (code = 1000) {
    if (this.readyState !== OPEN) { this.terminate(); return }
    const body = Buffer.alloc(2)
    body.writeUInt16BE(code)
    this._write(0x8, body)
    this.readyState = CLOSING
    this._closeCode = code
  }

  terminate () {
    this._socket.destroy()
  }
}
