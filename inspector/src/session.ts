// One open project: the SDK connection, and what the page needs to know of it.

import {
  type Connection, type ConnectionStatus, type Timeline, addClip, addTrack, connect, moveClip,
  readTimeline
} from '@flowai/client'
import type * as Y from 'yjs'

import { type Presence, colorFor, splitPresence } from './presence.js'

export interface SessionEvents {
  timeline: (timeline: Timeline) => void
  presence: (presence: Presence) => void
  status: (status: ConnectionStatus) => void
  unsaved: (unsaved: boolean) => void
  close: (code: number, reason: string) => void
}

export interface SessionOptions {
  readonly wsUrl: string
  readonly projectId: string
  readonly userId: string
  readonly getToken: () => Promise<string>
  readonly events: SessionEvents
}

export class Session {
  readonly conn: Connection
  private frame: ReturnType<typeof setTimeout> | null = null
  private readonly offs: Array<() => void> = []

  constructor (readonly options: SessionOptions) {
    this.conn = connect({
      url: options.wsUrl,
      projectId: options.projectId,
      getToken: options.getToken,
      saved: true,
      // Each tab is its own collaborator: no cross-tab shortcut that bypasses the server.
      disableBc: true
    })
    const { events } = options
    this.offs.push(
      this.conn.on('status', events.status),
      this.conn.on('unsavedChanges', events.unsaved),
      this.conn.on('close', ({ code, reason }) => events.close(code, reason))
    )
    this.conn.doc.on('update', this.onUpdate)
    this.conn.awareness.on('change', this.onAwareness)
    this.conn.awareness.setLocalStateField('user', {
      id: options.userId, name: options.userId, color: colorFor(options.userId)
    })
    this.emitTimeline()
  }

  get doc (): Y.Doc { return this.conn.doc }
  get timeline (): Timeline { return readTimeline(this.conn.doc) }

  select (clipId: string | null): void {
    this.conn.awareness.setLocalStateField('selection', clipId)
  }

  addTrack (kind: 'video' | 'audio' | 'subtitle' | 'overlay', name: string): string {
    return addTrack(this.conn.doc, { kind, name })
  }

  addClip (clip: Parameters<typeof addClip>[1]): string {
    return addClip(this.conn.doc, clip)
  }

  moveClip (clipId: string, startMs: number, trackId: string): void {
    moveClip(this.conn.doc, clipId, { start_ms: startMs, track: trackId })
  }

  presence (): Presence {
    return splitPresence(this.conn.awareness.getStates(), this.conn.doc.clientID)
  }

  destroy (): void {
    if (this.frame !== null) clearTimeout(this.frame)
    for (const off of this.offs) off()
    this.conn.doc.off('update', this.onUpdate)
    this.conn.awareness.off('change', this.onAwareness)
    this.conn.destroy()
  }

  // Many updates can arrive at once (a restore, a sync): draw once per turn of the event
  // loop. A timer, not requestAnimationFrame, which a hidden tab does not run.
  private readonly onUpdate = (): void => {
    if (this.frame !== null) return
    this.frame = setTimeout(() => {
      this.frame = null
      this.emitTimeline()
    }, 0)
  }

  private readonly onAwareness = (): void => {
    this.options.events.presence(this.presence())
  }

  private emitTimeline (): void {
    this.options.events.timeline(readTimeline(this.conn.doc))
  }
}
