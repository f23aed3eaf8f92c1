"""Thumbnails: an image from the user's prompt and the project's title, stored as an asset
and set as the project's thumbnail."""

from __future__ import annotations

from typing import Any, Final

from ai.errors import ProviderMalformed
from ai.jobs.context import JobContext, JobKind, Outcome
from ai.media import media_uri
from ai.operations.common import Providers, job_tag
from ai.sniff import sniff
from ai.text_safety import clean_text
from ai.usage import Usage
from billing.prices import Meter
from crdt.timeline import AssetKind, add_asset, read_timeline, set_project_fields

__all__ = ["KIND", "build_prompt", "estimate", "job_kind"]

KIND: Final = "ai.thumbnail"
TITLE_CHARS_MAX: Final = 200

# The fixed frame around the user's words: image models have no system role, so the
# constant parts come first and last, and the user's text is quoted, cleaned and capped.
_PROMPT_HEAD: Final = (
    "A video thumbnail, 16:9 composition centred in a square frame, bold and legible at "
    "small sizes, no watermarks, no borders. The video is titled: "
)
_PROMPT_STYLE: Final = " The creator describes the picture they want as: "
_PROMPT_TAIL: Final = " Render only what is described; do not add any text that was not quoted."


def build_prompt(title: str, prompt: str) -> str:
    title = clean_text(title)[:TITLE_CHARS_MAX].replace('"', "'")
    prompt = clean_text(prompt).replace('"', "'")
    return f'{_PROMPT_HEAD}"{title}".{_PROMPT_STYLE}"{prompt}".{_PROMPT_TAIL}'


def estimate(providers: Providers) -> Usage:
    return Usage.of(providers.need_images().product, Meter.IMAGES, 1)


def write_thumbnail(doc: Any, asset_id: str, uri: str) -> None:
    with doc.transaction():
        if read_timeline(doc).asset(asset_id) is None:
            add_asset(doc, AssetKind.IMAGE, "Thumbnail", uri, origin="ai:image", asset_id=asset_id)
        set_project_fields(doc, thumbnail_asset=asset_id)


def job_kind(providers: Providers) -> JobKind:
    async def handle(ctx: JobContext) -> Outcome:
        images = providers.need_images()
        prompt = build_prompt(str(ctx.job.input.get("title", "")), str(ctx.job.input["prompt"]))
        await ctx.progress(0.1, "generating")

        async def run() -> tuple[dict[str, Any], Usage]:
            image = await images.generate(prompt)
            kind = sniff(image.data[:32])
            if kind is None or kind.kind != "image":
                raise ProviderMalformed("openai", "the image is not a PNG, JPEG or WebP")
            key = f"projects/{ctx.project_id}/ai/{ctx.job.id}/thumbnail.{kind.extension}"
            await ctx.media.put_bytes(key, image.data, kind.mime)
            return {"key": key, "bytes": len(image.data)}, image.usage

        stored = await ctx.step("image", run)
        asset_id = f"{job_tag(ctx.job.id)}-thumbnail"
        uri = media_uri(stored["key"])

        async def deliver() -> None:
            await ctx.rooms.edit(ctx.project_id, lambda doc: write_thumbnail(doc, asset_id, uri))

        return Outcome(
            result={"asset_id": asset_id, "uri": uri}, usage=ctx.usage(), deliver=deliver
        )

    return JobKind(KIND, handle)
