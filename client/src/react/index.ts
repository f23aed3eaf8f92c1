/**
 * React bindings (`@flowai/client/react`): hooks over a `Connection`, built on
 * `useSyncExternalStore`, so a component re-renders only when what it reads changed.
 */

import { useCallback, useRef, useSyncExternalStore } from 'react'
import type * as Y from 'yjs'

import type { Awareness, Connection } from '../connection/connect.js'
import type { ConnectionStatus } from '../connection/policy.js'
import type { Timeline } from '../timeline/schema.js'
import { readTimeline } from '../timeline/read.js'

/** The connection's status; re-renders when it changes. */
export function useConnectionStatus (connection: Connection): ConnectionStatus {
  const subscribe = useCallback((notify: () => void) => connection.on('status', notify), [connection])
  return useSyncExternalStore(subscribe, () => connection.status)
}

/** True while local edits are not yet confirmed stored by the server (needs `saved: true`). */
export function useUnsavedChanges (connection: Connection): boolean {
  const subscribe = useCallback((notify: () => void) => connection.on('unsavedChanges', notify), [connection])
  return useSyncExternalStore(subscribe, () => connection.unsavedChanges)
}

/** The timeline as read by `readTimeline`, read again after every change of the document. */
export function useTimeline (doc: Y.Doc): Timeline {
  const cache = useRef<{ doc: Y.Doc, version: number, timeline: Timeline } | null>(null)
  const version = useRef(0)
  const subscribe = useCallback((notify: () => void) => {
    const onUpdate = (): void => {
      version.current += 1
      notify()
    }
    doc.on('update', onUpdate)
    return () => doc.off('update', onUpdate)
  }, [doc])
  const snapshot = (): Timeline => {
    const cached = cache.current
    if (cached !== null && cached.doc === doc && cached.version === version.current) return cached.timeline
    const timeline = readTimeline(doc)
    cache.current = { doc, version: version.current, timeline }
    return timeline
  }
  return useSyncExternalStore(subscribe, snapshot)
}

export interface Peer<State> {
  clientId: number
  state: State
}

/** Presence states of everyone else in the project (the local client excluded). */
export function usePresence<State = Record<string, unknown>> (awareness: Awareness): Array<Peer<State>> {
  const cache = useRef<Array<Peer<State>> | null>(null)
  const subscribe = useCallback((notify: () => void) => {
    const onChange = (): void => {
      cache.current = null
      notify()
    }
    awareness.on('change', onChange)
    return () => awareness.off('change', onChange)
  }, [awareness])
  const snapshot = (): Array<Peer<State>> => {
    if (cache.current === null) {
      cache.current = [...awareness.getStates().entries()]
        .filter(([clientId]) => clientId !== awareness.clientID)
        .map(([clientId, state]) => ({ clientId, state: state as State }))
    }
    return cache.current
  }
  return useSyncExternalStore(subscribe, snapshot)
}
