"""Every websocket close code a client can see, in one place.

The y-websocket client reconnects after any close; the code tells a frontend (and its logs)
whether reconnecting can help.
"""

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
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
    # Nothing received for FLOWAI_IDLE_TIMEOUT_S while nothing was being sent.
    IDLE_TIMEOUT = 4408
    RATE_LIMITED = 4429
