"""The websocket transport: ``/ws/{project_id}`` as a uvicorn protocol on the transport.

``connection`` is one client (an ``asyncio.Protocol``); ``handshake`` reads and answers the
upgrade; ``admission`` admits the client to its room; ``frames`` holds the pure helpers of the
request and the frames; ``limits`` the send budget and the inbound rate limits; ``idle`` the
sweep that pings and closes idle connections; ``router`` sends a connection that opens with a
join straight to ``WebSocketConnection``. uvicorn is given ``server.ws:WebSocketConnection``
and ``server.ws:JoinRouter`` (see ``server.app``).
"""

from server.ws.connection import JoinRouter, WebSocketConnection

__all__ = ["JoinRouter", "WebSocketConnection"]
