"""Voice clones: ElevenLabs instant voice cloning from the user's audio samples, recorded in
``voice_clones`` (private to its owner)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from ai.jobs.context import JobContext, JobKind, Outcome
from ai.operations.common import Providers
from ai.ports import VoiceClone
from ai.usage import Usage
from billing.prices import Meter

__all__ = ["KIND", "estimate", "job_kind", "voice_json"]

KIND: Final = "ai.voice_clone"
CLONE_PRODUCT: Final = "elevenlabs/instant-voice-clone"


def estimate(providers: Providers) -> Usage:
    providers.need_cloner()
    return Usage.of(CLONE_PRODUCT, Meter.VOICE_CLONES, 1)


def voice_json(voice: VoiceClone) -> dict[str, Any]:
    return {
        "id": str(voice.id),
        "name": voice.name,
        "description": voice.description,
        "provider": voice.provider,
        "provider_voice_id": voice.provider_voice_id,
        "sample_count": voice.sample_count,
        "created_at": voice.created_at.isoformat(),
    }


def job_kind(providers: Providers) -> JobKind:
    async def handle(ctx: JobContext) -> Outcome:
        cloner = providers.need_cloner()
        voices = providers.voices
        assert voices is not None
        job_input = ctx.job.input
        keys = [str(k) for k in job_input["samples"]]
        await ctx.progress(0.1, "uploading samples")

        async def run() -> tuple[dict[str, Any], Usage]:
            paths = []
            for i, key in enumerate(keys):
                path = ctx.workdir / f"sample-{i}{_suffix(key)}"
                await ctx.media.get_file(key, path)
                paths.append(path)
            cloned = await cloner.clone(
                name=str(job_input["name"]),
                description=job_input.get("description"),
                samples=paths,
            )
            value = {
                "provider_voice_id": cloned.provider_voice_id,
                "requires_verification": cloned.requires_verification,
            }
            return value, cloned.usage

        cloned = await ctx.step("clone", run)
        voice = VoiceClone(
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"flowai:voice:{ctx.job.id}"),
            user_id=ctx.job.user_id,
            name=str(job_input["name"]),
            description=job_input.get("description"),
            provider="elevenlabs",
            provider_voice_id=str(cloned["provider_voice_id"]),
            sample_count=len(keys),
            job_id=ctx.job.id,
            created_at=datetime.now(UTC),
        )

        async def deliver() -> None:
            await voices.add(voice)  # Idempotent by job: a second delivery finds the first.
            for key in keys:  # The samples were only needed for the clone.
                await ctx.media.delete(key)

        result = {
            "voice": voice_json(voice),
            "requires_verification": bool(cloned["requires_verification"]),
        }
        return Outcome(result=result, usage=ctx.usage(), deliver=deliver)

    return JobKind(KIND, handle)


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""
