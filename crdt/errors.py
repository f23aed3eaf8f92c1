"""Errors raised by the pure CRDT layer.

CrdtError
├── ProtocolError        a frame that does not decode (wire close 4400)
│   └── UnknownMessage   a well-formed frame of a message type we do not speak
└── (timeline.TimelineError lives with the document model)
"""


class CrdtError(Exception):
    """Base of the errors of this package."""


class ProtocolError(CrdtError):
    """The bytes are not a valid y-websocket message."""


class UnknownMessage(ProtocolError):
    """A message type (or sync sub-type) outside the y-websocket protocol."""
