// A complete editor component on @flowai/client (the README's React example; the tests
// type-check this file against the built package).
import { type ReactElement, useEffect, useState } from 'react'
import {
  type Connection, TimelineError, addClip, addTrack, connect, deleteClip, moveClip
} from '@flowai/client'
import { usePresence, useConnectionStatus, useTimeline, useUnsavedChanges } from '@flowai/client/react'

export interface ProjectEditorProps {
  /** e.g. `wss://api.example.com/ws` */
  url: string
  projectId: string
  /** Your auth client's current access token, e.g. `(await supabase.auth.getSession()).data.session.access_token` */
  getToken: () => Promise<string>
  userName: string
}

export function ProjectEditor ({ url, projectId, getToken, userName }: ProjectEditorProps): ReactElement {
  const [connection, setConnection] = useState<Connection | null>(null)
  useEffect(() => {
    const conn = connect({ url, projectId, getToken, saved: true })
    conn.awareness.setLocalStateField('user', { name: userName })
    setConnection(conn)
    return () => conn.destroy()
  }, [url, projectId, getToken, userName])
  if (connection === null) return <p>Connecting…</p>
  return <Editor connection={connection} />
}

interface UserPresence {
  user?: { name: string }
  playhead_ms?: number
}

function Editor ({ connection }: { connection: Connection }): ReactElement {
  const status = useConnectionStatus(connection)
  const unsaved = useUnsavedChanges(connection)
  const timeline = useTimeline(connection.doc)
  const peers = usePresence<UserPresence>(connection.awareness)
  const [error, setError] = useState<string | null>(null)

  // Writers throw a TimelineError subclass and leave the document unchanged when refused.
  const edit = (change: () => void): void => {
    try {
      change()
      setError(null)
    } catch (e) {
      if (e instanceof TimelineError) setError(e.message)
      else throw e
    }
  }

  if (status === 'denied' || status === 'not_found' || status === 'unauthenticated') {
    return <p>Cannot open this project ({status}): {connection.lastClose?.reason}</p>
  }
  return (
    <main>
      <header>
        <h1>{timeline.project.title}</h1>
        <span>{status === 'synced' ? (unsaved ? 'Saving…' : 'Saved') : status}</span>
        <span>{peers.map((peer) => peer.state.user?.name ?? 'someone').join(', ')}</span>
      </header>
      {error !== null && <p role="alert">{error}</p>}
      <button onClick={() => edit(() => addTrack(connection.doc, { kind: 'video', name: 'Video' }))}>
        Add track
      </button>
      {timeline.tracks.map((track) => (
        <section key={track.id}>
          <h2>{track.name} ({track.kind})</h2>
          <button onClick={() => edit(() => addClip(connection.doc, {
            track: track.id, kind: 'title', start_ms: 0, duration_ms: 2000, text: 'Title'
          }))}>Add title</button>
          <ul>
            {timeline.clips.filter((clip) => clip.track === track.id).map((clip) => (
              <li key={clip.id}>
                {clip.kind} at {clip.start_ms} ms for {clip.duration_ms} ms
                <button onClick={() => edit(() => moveClip(connection.doc, clip.id, { start_ms: clip.start_ms + 1000 }))}>
                  +1 s
                </button>
                <button onClick={() => edit(() => deleteClip(connection.doc, clip.id))}>Delete</button>
              </li>
            ))}
          </ul>
        </section>
      ))}
      {timeline.problems.length > 0 && <p>{timeline.problems.length} malformed entries ignored</p>}
    </main>
  )
}
