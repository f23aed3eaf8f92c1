"""The render service's checks before a job is queued, and its estimates (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.prices import Meter
from crdt import timeline as tl
from render.errors import InvalidRender
from render.ffmpeg_local import LocalRenderer
from render.job import PRODUCT, RenderConfig, RenderService, _seconds_from_cost
from render.remotion_lambda import CLIENT_VERSION, RemotionLambdaConfig, RemotionLambdaRenderer
from render.spec import RenderOptions, RenderSpec
from render.spec_build import build_spec

PID = "7f1c0c3e-0000-0000-0000-000000000001"


def _spec(uris: dict[str, str], *, seconds: int = 10, resolution: str = "project") -> RenderSpec:
    doc = tl.new_project_doc("T", fps=30, width=1920, height=1080)
    track = tl.add_track(doc, "video", "V1")
    for n, (asset_id, uri) in enumerate(uris.items()):
        tl.add_asset(doc, "video", asset_id, uri, asset_id=asset_id)
        tl.add_clip(doc, track, "video", start_ms=n * seconds * 1000,
                    duration_ms=seconds * 1000, asset=asset_id)  # fmt: skip
    return build_spec(tl.read_timeline(doc), RenderOptions(resolution=resolution))


def _local(**config: object) -> RenderService:
    return RenderService(RenderConfig(**config), local=LocalRenderer())  # type: ignore[arg-type]


def _remote() -> RenderService:
    config = RemotionLambdaConfig(
        region="us-east-1", function_name="f", serve_url="https://x", version=CLIENT_VERSION
    )
    return RenderService(RenderConfig(), remote=RemotionLambdaRenderer(config))


def _paths(service: RenderService, spec: RenderSpec) -> dict[str, str]:
    with pytest.raises(InvalidRender) as info:
        service.check(spec, PID)
    return {p.path: p.message for p in info.value.problems}


def test_local_reads_own_media_and_allowed_files_only(tmp_path: Path) -> None:
    service = _local(file_roots=(tmp_path,))
    ok = {"own": f"media://projects/{PID}/uploads/a.mp4", "file": (tmp_path / "b.mp4").as_uri()}
    service.check(_spec(ok), PID)

    bad = {
        "theirs": "media://projects/another/uploads/a.mp4",
        "escape": f"file://{tmp_path}/../etc/passwd",
        "web": "https://cdn.example.com/a.mp4",
        "odd": "ftp://example.com/a.mp4",
    }
    problems = _paths(service, _spec(bad))
    assert set(problems) == {f"assets/{name}/uri" for name in bad}
    assert "outside the folders" in problems["assets/escape/uri"]


def test_lambda_takes_https_but_not_files() -> None:
    service = _remote()
    service.check(_spec({"web": "https://cdn.example.com/a.mp4"}), PID)
    assert set(_paths(service, _spec({"disk": "file:///tmp/a.mp4"}))) == {"assets/disk/uri"}


def test_local_input_limit() -> None:
    uris = {f"a{n}": f"media://projects/{PID}/a{n}.mp4" for n in range(5)}
    assert "timeline" in _paths(_local(local_inputs_max=8), _spec(uris, seconds=1))


def test_estimates_scale_with_length_and_pixels() -> None:
    uri = {"a": f"media://projects/{PID}/a.mp4"}
    local, remote = _local(), _remote()

    def seconds(service: RenderService, spec: RenderSpec) -> int:
        return service.estimate(spec).get(PRODUCT, Meter.RENDER_SECONDS)

    full = seconds(local, _spec(uri, seconds=60))
    assert full == 60 + 2
    assert seconds(local, _spec(uri, seconds=60, resolution="540p")) == 15 + 2
    assert seconds(remote, _spec(uri, seconds=60)) == 60 * 12 + 15


def test_billed_seconds_from_remotions_cost_when_no_duration_is_reported() -> None:
    # $0.0000333334 per billed second of a 2048 MB function.
    assert _seconds_from_cost(0.0123) == 369
    assert _seconds_from_cost(0.0) == 0
