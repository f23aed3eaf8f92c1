"""Every websocket close code a client can see, in one place.

The codes follow the official client's convention (y-websocket 3.x): after a close in
4400-4499 it stops reconnecting for good, after anything else it retries with backoff. So the
permanent refusals live in 44xx and the ones after which reconnecting helps (rate limited,
idle) in 45xx; 1012 and 1013 are retried too. 4401 (token) is permanent for the plain client,
since the same stale token would be sent again; the browser SDK fetches a new one and resumes.
"""

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    # A bug in the server while handling this connection's message; the room is unaffected.
    INTERNAL_ERROR = 1011
    SERVER_RESTARTING = 1012
    # The server's send queue for this client overflowed (the client reads too slowly).
    # It resyncs on reconnect; nothing it sent is lost.
    TRY_AGAIN_LATER = 1013
    MALFORMED = 4400
    NOT_AUTHENTICATED = 4401
    NOT_A_MEMBER = 4403
    NO_SUCH_PROJECT = 4404
    # A message over FLOWAI_MESSAGE_BYTES_MAX. Not the standard 1009: the official client
    # retries that without end, sending the same message again.
    MESSAGE_TOO_BIG = 4413
    # Nothing received for FLOWAI_IDLE_TIMEOUT_S while nothing was being sent.
    IDLE_TIMEOUT = 4508
    RATE_LIMITED = 4529
