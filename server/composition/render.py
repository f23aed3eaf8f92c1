"""The render part of the composition root: the backend chosen by settings, built once."""

from __future__ import annotations

import logging

from render.errors import BackendMisconfigured
from render.ffmpeg_local import LocalRenderer
from render.job import RenderConfig, RenderService
from render.remotion_lambda import RemotionLambdaConfig, RemotionLambdaRenderer
from server.settings import Settings

__all__ = ["build_render_service"]

log = logging.getLogger(__name__)


def build_render_service(settings: Settings) -> RenderService:
    """The render service; raises ``BackendMisconfigured`` (the server does not start) when
    Remotion Lambda is chosen without its settings or with a client of another version."""
    config = RenderConfig(
        file_roots=tuple(settings.render_file_roots),
        local_inputs_max=settings.render_local_inputs_max,
        local_concurrency=settings.render_local_concurrency,
        media_url_ttl_s=settings.render_media_url_ttl_s,
    )
    if settings.render_backend == "local":
        local = LocalRenderer(
            preset=settings.render_local_preset,
            threads=settings.render_local_threads,
        )
        return RenderService(config, local=local)
    required = {
        "FLOWAI_REMOTION_FUNCTION_NAME": settings.remotion_function_name,
        "FLOWAI_REMOTION_SERVE_URL": settings.remotion_serve_url,
        "FLOWAI_REMOTION_VERSION": settings.remotion_version,
    }
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise BackendMisconfigured(f"render_backend is remotion_lambda; set {', '.join(missing)}")
    assert settings.remotion_function_name and settings.remotion_serve_url
    assert settings.remotion_version
    if not settings.media_s3_bucket:
        log.warning(
            "Remotion Lambda cannot fetch media stored on this machine: set "
            "FLOWAI_MEDIA_S3_BUCKET, or only https:// assets will render"
        )
    remote = RemotionLambdaRenderer(
        RemotionLambdaConfig(
            region=settings.remotion_region,
            function_name=settings.remotion_function_name,
            serve_url=settings.remotion_serve_url,
            version=settings.remotion_version,
            composition=settings.remotion_composition,
            bucket_name=settings.remotion_bucket_name,
            endpoint_url=settings.remotion_lambda_endpoint_url,
            s3_endpoint_url=settings.remotion_s3_endpoint_url,
            frames_per_lambda=settings.remotion_frames_per_lambda,
            concurrency=settings.remotion_concurrency,
            privacy=settings.remotion_privacy,
            poll_interval_s=settings.remotion_poll_interval_s,
            timeout_s=settings.remotion_timeout_s,
            license_key=settings.remotion_license_key,
        )
    )
    return RenderService(config, remote=remote)
