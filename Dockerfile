# syntax=docker/dockerfile:1
# FlowAI collaboration backend: `flowai serve` (the default command) or `flowai worker`.
#   docker build -t flowai-backend .
#   docker run -p 8000:8000 -v flowai-data:/var/lib/flowai flowai-backend
# With no FLOWAI_DATABASE_URL the server starts its embedded PostgreSQL in the data volume.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: the package and its dependencies in a plain virtualenv ------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip
WORKDIR /src
# Metadata first; the sources after, so that an edit re-runs only the last steps.
COPY pyproject.toml README.md ./
COPY server ./server
COPY crdt ./crdt
COPY persistence ./persistence
COPY ai ./ai
COPY billing ./billing
COPY render ./render
# A regular (non-editable) install: the image needs no source tree at run time.
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"

# -- runtime -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# ffmpeg itself comes with the imageio-ffmpeg wheel (a static build) inside the virtualenv;
# burned-in subtitles need fonts that fontconfig can find.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fontconfig fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/flowai --create-home flowai
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FLOWAI_DATA_DIR=/var/lib/flowai/data \
    FLOWAI_HOST=0.0.0.0 \
    FLOWAI_PORT=8000
USER flowai
WORKDIR /var/lib/flowai
RUN mkdir -p /var/lib/flowai/data
# The embedded database, the local JWT secret and local media (when those are not external).
VOLUME ["/var/lib/flowai/data"]
EXPOSE 8000
# /readyz: the database (and Redis, when configured) answer. The first start of an embedded
# database takes a while, hence the start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('FLOWAI_PORT', '8000'), timeout=4)"]
# SIGTERM flushes every room and closes websockets with 1012 (up to 30 s if the database is
# unreachable): give the container that long to stop.
STOPSIGNAL SIGTERM
ENTRYPOINT ["flowai"]
CMD ["serve", "--host", "0.0.0.0"]
