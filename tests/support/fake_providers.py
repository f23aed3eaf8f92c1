"""Local fakes of the OpenAI and ElevenLabs endpoints the product calls.

The real ``openai`` and ``elevenlabs`` SDKs are pointed at this server (``base_url``); the
openai SDK 3.x sends through httpx2, which httpx mocking libraries do not intercept, so a real
server on 127.0.0.1 is the honest fake. Responses carry the usage fields the real APIs send.
Faults are injected per route (``fail``): error statuses, delays past the client's timeout,
malformed bodies, and gates that hold a request until the test releases it. Every request is
recorded for assertions (``calls``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import socket
import struct
import subprocess
import tempfile
import uuid
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ai.audio import ffmpeg_exe

OPENAI_KEY = "sk-test-openai"
ELEVENLABS_KEY = "xi-test-elevenlabs"


@dataclass
class Fault:
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    malformed: bool = False
    gate: asyncio.Event | None = None


@dataclass
class Recorded:
    route: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)
    files: list[tuple[str, str, bytes]] = field(default_factory=list)  # (field, filename, data)
    # What the fake reported as billed, for checking the credits charged.
    usage: dict[str, Any] = field(default_factory=dict)


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _ffmpeg(*args: str) -> str:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return proc.stderr.decode("utf-8", "replace")


def speech_spans(audio: bytes, suffix: str) -> tuple[float, list[tuple[float, float]]]:
    """Duration and sounding spans of an uploaded file, found the way a real model hears it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(audio)
        log = _ffmpeg("-i", str(path), "-af", "silencedetect=noise=-35dB:d=0.3", "-f", "null", "-")
    m = re.search(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", log)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else 0.0
    spans, cursor = [], 0.0
    for line in log.splitlines():
        if (s := re.search(r"silence_start:\s*(-?[0-9.]+)", line)) is not None:
            start = max(0.0, float(s[1]))
            if start - cursor > 0.2:
                spans.append((cursor, start))
        elif (e := re.search(r"silence_end:\s*([0-9.]+)", line)) is not None:
            cursor = float(e[1])
    if duration - cursor > 0.2 and (not spans or cursor > spans[-1][1]):
        spans.append((cursor, duration))
    return duration, spans


def tone_mp3(duration_s: float) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.mp3"
        _ffmpeg(
            "-f", "lavfi", "-i", f"sine=frequency=330:duration={duration_s:.3f}",
            "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k", str(out),
        )  # fmt: skip
        return out.read_bytes()


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class FakeProviders:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.gates: list[asyncio.Event] = []
        # Chat answers by JSON-schema name: request body -> the object the model returns.
        self.chat_answers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "Translation": _translate,
        }
        self.speech_seconds_per_char = 0.06
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"]),
                Route("/v1/images/generations", self._image, methods=["POST"]),
                Route("/v1/text-to-speech/{voice_id}", self._tts, methods=["POST"]),
                Route("/v1/voices/add", self._clone, methods=["POST"]),
                Route("/v1/voices/{voice_id}", self._delete_voice, methods=["DELETE"]),
            ]
        )

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def elevenlabs_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, route: str, *faults: Fault) -> None:
        self.faults.setdefault(route, deque()).extend(faults)
        self.gates.extend(f.gate for f in faults if f.gate is not None)

    def calls(self, route: str) -> list[Recorded]:
        return [r for r in self.requests if r.route == route]

    async def _record(self, route: str, request: Request) -> Recorded:
        rec = Recorded(route, request.url.path, dict(request.headers))
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            rec.json = await request.json()
        elif ctype.startswith("multipart/form-data"):
            form = await request.form()
            for key, value in form.multi_items():
                if isinstance(value, str):
                    rec.form.setdefault(key, []).append(value)
                else:
                    rec.files.append((key, value.filename or "", await value.read()))
            await form.close()
        self.requests.append(rec)
        return rec

    async def _fault(self, route: str) -> Response | None:
        queue = self.faults.get(route)
        if not queue:
            return None
        fault = queue.popleft()
        if fault.gate is not None:
            await asyncio.wait_for(fault.gate.wait(), 60)
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.malformed:
            return Response(b'{"id": "chatcmpl-broken", "choi', media_type="application/json")
        if fault.status is not None:
            body = fault.body or {"error": {"message": f"injected {fault.status}", "type": "x"}}
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        return None

    def _unauthorised(self, request: Request, provider: str) -> Response | None:
        if provider == "openai":
            ok = request.headers.get("authorization") == f"Bearer {OPENAI_KEY}"
        else:
            ok = request.headers.get("xi-api-key") == ELEVENLABS_KEY
        if ok:
            return None
        return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)

    # -- OpenAI ---------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        rec = await self._record("chat", request)
        if (denied := self._unauthorised(request, "openai")) is not None:
            return denied
        if (fault := await self._fault("chat")) is not None:
            return fault
        body = rec.json
        schema = body.get("response_format", {}).get("json_schema", {}).get("name", "")
        answer = self.chat_answers.get(schema, _generic_answer)(body)
        content = json.dumps(answer)
        prompt = "".join(str(m.get("content", "")) for m in body["messages"])
        usage = {
            "prompt_tokens": _tokens(prompt),
            "completion_tokens": _tokens(content),
            "total_tokens": _tokens(prompt) + _tokens(content),
        }
        rec.usage = {"model": body["model"], **usage}
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": 1_760_000_000,
                "model": f"{body['model']}-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
        )

    async def _transcribe(self, request: Request) -> Response:
        rec = await self._record("transcribe", request)
        if (denied := self._unauthorised(request, "openai")) is not None:
            return denied
        if (fault := await self._fault("transcribe")) is not None:
            return fault
        _, filename, data = next(f for f in rec.files if f[0] == "file")
        duration, spans = await asyncio.to_thread(speech_spans, data, Path(filename).suffix)
        fmt = rec.form.get("response_format", ["json"])[0]
        language = rec.form.get("language", ["en"])[0]
        texts = [f"tone {i + 1}" for i in range(len(spans))]
        model = rec.form["model"][0]
        rec.usage = {"model": model, "seconds": math.ceil(duration), "duration": duration}
        if fmt == "verbose_json":
            segments = [
                {
                    "id": i, "seek": 0, "start": round(a, 2), "end": round(b, 2), "text": f" {t}",
                    "tokens": [50364, 1000 + i], "temperature": 0.0, "avg_logprob": -0.2,
                    "compression_ratio": 1.1, "no_speech_prob": 0.01,
                }
                for i, ((a, b), t) in enumerate(zip(spans, texts, strict=True))
            ]  # fmt: skip
            return JSONResponse(
                {
                    "task": "transcribe",
                    "language": "english" if language == "en" else language,
                    "duration": round(duration, 2),
                    "text": " ".join(texts),
                    "segments": segments,
                    "usage": {"type": "duration", "seconds": math.ceil(duration)},
                }
            )
        text = " ".join(texts)
        audio_tokens = math.ceil(duration * 10)
        return JSONResponse(
            {
                "text": text,
                "usage": {
                    "type": "tokens",
                    "input_tokens": audio_tokens,
                    "output_tokens": _tokens(text),
                    "total_tokens": audio_tokens + _tokens(text),
                    "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
                },
            }
        )

    async def _image(self, request: Request) -> Response:
        rec = await self._record("image", request)
        if (denied := self._unauthorised(request, "openai")) is not None:
            return denied
        if (fault := await self._fault("image")) is not None:
            return fault
        body = rec.json
        rec.usage = {"model": body["model"], "quality": body.get("quality"), "images": 1}
        return JSONResponse(
            {
                "created": 1_760_000_000,
                "data": [{"b64_json": base64.b64encode(tiny_png()).decode()}],
                "background": "opaque",
                "output_format": "png",
                "quality": body.get("quality", "low"),
                "size": body.get("size", "1024x1024"),
                "usage": {
                    "input_tokens": _tokens(body["prompt"]),
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
                    "output_tokens": 272,
                    "total_tokens": 272 + _tokens(body["prompt"]),
                },
            }
        )

    # -- ElevenLabs -----------------------------------------------------------------------

    async def _tts(self, request: Request) -> Response:
        rec = await self._record("tts", request)
        if (denied := self._unauthorised(request, "elevenlabs")) is not None:
            return denied
        if (fault := await self._fault("tts")) is not None:
            return fault
        text: str = rec.json["text"]
        rec.usage = {"model": rec.json.get("model_id"), "characters": len(text)}
        seconds = min(10.0, max(0.5, len(text) * self.speech_seconds_per_char))
        audio = await asyncio.to_thread(tone_mp3, seconds)
        return Response(
            audio,
            media_type="audio/mpeg",
            headers={"character-cost": str(len(text)), "request-id": uuid.uuid4().hex},
        )

    async def _clone(self, request: Request) -> Response:
        await self._record("clone", request)
        if (denied := self._unauthorised(request, "elevenlabs")) is not None:
            return denied
        if (fault := await self._fault("clone")) is not None:
            return fault
        return JSONResponse(
            {"voice_id": f"voice{uuid.uuid4().hex[:16]}", "requires_verification": False}
        )

    async def _delete_voice(self, request: Request) -> Response:
        await self._record("voice_delete", request)
        if (denied := self._unauthorised(request, "elevenlabs")) is not None:
            return denied
        if (fault := await self._fault("voice_delete")) is not None:
            return fault
        return JSONResponse({"status": "ok"})


def _user_data(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")


def _translate(body: dict[str, Any]) -> Any:
    text = _user_data(body)
    inner = text[text.index("<segments>") + len("<segments>") : text.index("</segments>")]
    segments = json.loads(inner.replace("\uff1c", "<").replace("\uff1e", ">"))
    return {"segments": [{"id": s["id"], "text": f"[es] {s['text']}"} for s in segments]}


def _generic_answer(body: dict[str, Any]) -> Any:
    """An object that satisfies the requested JSON schema, built from its properties."""
    schema = body["response_format"]["json_schema"]["schema"]
    return _instance(schema, schema.get("$defs", {}))


def _instance(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    kind = schema.get("type")
    if kind == "object":
        return {k: _instance(v, defs) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        return [_instance(schema["items"], defs) for _ in range(count)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if "enum" in schema:
        return schema["enum"][0]
    return "Generated text"


@asynccontextmanager
async def run_fake_providers() -> AsyncIterator[FakeProviders]:
    fake = FakeProviders()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    fake.port = sock.getsockname()[1]
    config = uvicorn.Config(fake.app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        yield fake
    finally:
        # Release anything still gated so the server can finish its requests.
        for gate in fake.gates:
            gate.set()
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()
