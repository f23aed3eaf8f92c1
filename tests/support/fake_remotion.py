"""A local fake of the AWS Lambda invoke API running a Remotion render function.

It answers ``POST /2015-03-31/functions/{name}/invocations`` the way a deployed Remotion
function does: ``info`` gives its version; ``start`` checks the caller's version and returns
``{type: success, renderId, bucketName}``; ``status`` returns Remotion's progress object,
advancing one step per call, and on the last step writes the output file to S3 (moto) and
reports ``done`` with ``outputFile``, ``outKey``, ``outBucket``, ``costs`` and
``estimatedBillingDurationInMilliseconds``. Errors come back as Remotion sends them:
``{type: error, message}`` in a 200 response, or an AWS error for an unknown function.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from render.remotion_lambda import CLIENT_VERSION

REGION = "us-east-1"
FUNCTION = "remotion-render-4-0-test-mem2048mb-disk2048mb-120sec"
BUCKET = "remotionlambda-useast1-fake0001"


@dataclass
class FakeRemotion:
    s3_endpoint: str
    output_file: Path | None = None
    version: str = CLIENT_VERSION
    steps: int = 3
    fail_at_step: int | None = None
    billed_ms: int = 45_678
    cost_usd: float = 0.0123
    # What the fake received, for assertions.
    invocations: list[dict[str, Any]] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    endpoint: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=self.s3_endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def handle(self, function: str, payload: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        if function != FUNCTION:
            headers = {"x-amzn-ErrorType": "ResourceNotFoundException"}
            return 404, headers, {"Type": "User", "message": f"Function not found: {function}"}
        with self.lock:
            self.invocations.append(payload)
        kind = payload.get("type")
        if kind == "info":
            return 200, {}, {"version": self.version, "type": "success"}
        if payload.get("version") != self.version:
            message = (
                f"Version mismatch: When calling renderMediaOnLambda(), you passed {function} "
                f"as the function, which has the version {self.version}, but the "
                f"@remotion/lambda package you used to invoke the function has version "
                f"{payload.get('version')}."
            )
            return 200, {}, {"type": "error", "message": message, "stack": "Error: ..."}
        if kind == "start":
            render_id = uuid.uuid4().hex[:10]
            bucket = payload.get("bucketName") or BUCKET
            with self.lock:
                self.polls[render_id] = 0
            return 200, {}, {"type": "success", "renderId": render_id, "bucketName": bucket}
        if kind == "status":
            return 200, {}, self._progress(payload["renderId"], payload["bucketName"])
        return 200, {}, {"type": "error", "message": f"Command not found: {kind}"}

    def _progress(self, render_id: str, bucket: str) -> dict[str, Any]:
        with self.lock:
            self.polls[render_id] += 1
            step = self.polls[render_id]
        base: dict[str, Any] = {
            "type": "success",
            "renderId": render_id,
            "bucket": bucket,
            "chunks": step,
            "done": False,
            "encodingStatus": {"framesEncoded": 0, "combinedFrames": 0, "timeToCombine": None},
            "costs": {
                "accruedSoFar": round(self.cost_usd * step / self.steps, 5),
                "displayCost": "$0.01",
                "currency": "USD",
                "disclaimer": "Estimated cost only.",
            },
            "renderMetadata": None if step == 1 else {"type": "video", "totalChunks": 4},
            "outputFile": None,
            "outKey": None,
            "outBucket": None,
            "errors": [],
            "fatalErrorEncountered": False,
            "overallProgress": (step - 1) / self.steps,
            "estimatedBillingDurationInMilliseconds": None,
        }
        if self.fail_at_step is not None and step >= self.fail_at_step:
            error = {
                "message": "Error: Target closed",
                "name": "Error",
                "stack": "Error: Target closed\n    at ...",
                "isFatal": True,
                "willRetry": False,
                "chunk": 1,
                "frame": 12,
                "attempt": 2,
                "totalAttempts": 2,
                "explanation": "The browser crashed while rendering.",
            }
            return {**base, "errors": [error], "fatalErrorEncountered": True}
        if step <= self.steps:
            return base
        key = f"renders/{render_id}/out.mp4"
        body = self.output_file.read_bytes() if self.output_file else b"not a video"
        self.s3().put_object(Bucket=bucket, Key=key, Body=body)
        return {
            **base,
            "done": True,
            "overallProgress": 1,
            "outputFile": f"https://s3.{REGION}.amazonaws.com/{bucket}/{key}",
            "outKey": key,
            "outBucket": bucket,
            "outputSizeInBytes": len(body),
            "costs": {**base["costs"], "accruedSoFar": self.cost_usd},
            "estimatedBillingDurationInMilliseconds": self.billed_ms,
            "timeToFinish": 5321,
        }

    def cancelled(self, render_id: str, bucket: str = BUCKET) -> bool:
        keys = self.s3().list_objects_v2(Bucket=bucket, Prefix=f"renders/{render_id}/")
        return any(o["Key"].endswith("cancel.json") for o in keys.get("Contents", []))


def _handler(fake: FakeRemotion) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            parts = self.path.split("/")
            # /2015-03-31/functions/{name}/invocations
            if len(parts) != 5 or parts[2] != "functions" or parts[4] != "invocations":
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            status, headers, body = fake.handle(parts[3], payload)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Amz-Executed-Version", "$LATEST")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free local port; yields its endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def fake_remotion(s3_endpoint: str, **options: Any) -> Iterator[FakeRemotion]:
    fake = FakeRemotion(s3_endpoint=s3_endpoint, **options)
    fake.s3().create_bucket(Bucket=BUCKET)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
