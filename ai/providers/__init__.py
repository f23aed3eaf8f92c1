"""The paid providers behind ``ai.ports``, one module per vendor and official SDK: ``openai``
(structured text, transcription, images) and ``elevenlabs`` (speech, voice clones).

Each module is an adapter: it implements the Protocols of ``ai.ports`` with an explicit timeout
and the SDK's own retries off, and maps SDK errors to ``ai.errors``. Only the composition root
(``server.composition.ai``) imports them; the operations see the ports. A module named after
its SDK shadows nothing: imports are absolute, so ``import openai`` inside
``ai.providers.openai`` is the SDK.
"""
