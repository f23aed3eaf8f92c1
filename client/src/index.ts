/**
 * @flowai/client: the browser client of the FlowAI collaboration backend.
 *
 * `connect()` wraps the official `y-websocket` provider (close codes, token refresh, the
 * server's `saved` message); the timeline helpers read and write the project document with the
 * server's own rules (crdt/timeline.py); `keyBetween` makes the server's fractional index keys.
 */

export {
  type Awareness, type CloseInfo, type Connection, type ConnectionEvents, type ConnectOptions,
  MESSAGE_SAVED, connect
} from './connection/connect.js'
export {
  type Backoff, type CloseAction, type ConnectionStatus, CLOSE_IDLE, CLOSE_MALFORMED,
  CLOSE_MESSAGE_TOO_BIG, CLOSE_NOT_AUTHENTICATED, CLOSE_NOT_A_MEMBER, CLOSE_NO_SUCH_PROJECT,
  CLOSE_RATE_LIMITED, DEFAULT_BACKOFF, TERMINAL_STATUSES, closeAction, retryDelayMs
} from './connection/policy.js'
export { type StateVector, UnsavedTracker } from './connection/unsaved.js'
export { DIGITS, FractionalIndexError, isValidKey, keyBetween, spreadKeys } from './fractionalIndex.js'
export {
  type Asset, type AssetKind, type Clip, type ClipKind, type NewAsset, type NewClip, type NewTrack,
  type Problem, type ProjectFields, type ProjectInfo, type ProjectInit, type Timeline, type Track,
  type TrackKind, ASSET_KINDS, AssetInUseError, CLIP_KINDS, DEFAULT_FPS, DEFAULT_HEIGHT,
  DEFAULT_ORIGIN, DEFAULT_VOLUME, DEFAULT_WIDTH, DuplicateIdError, InvalidValueError,
  MalformedDocumentError, ROOTS, ROOT_ASSETS, ROOT_CLIPS, ROOT_PROJECT, ROOT_TRACKS, TRACK_KINDS,
  TimelineError, UnknownAssetError, UnknownClipError, UnknownTrackError, addAsset, addClip,
  addTrack, deleteAsset, deleteClip, deleteTrack, initProject, moveClip, moveTrack, readTimeline,
  renameTrack, setClipText, setClipVolume, setProjectFields, setTitle, setTrackFlags, trimClip
} from './timeline/index.js'
