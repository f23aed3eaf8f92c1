"""AI services: provider adapters, media storage, durable jobs and the product's operations
(content, subtitles, dubbing, thumbnails, voice clones). See ``docs/ai.md``."""
