# The app image: web, the default-queue worker and beat. No torch, no transformers (pyproject's `train` extra
# is for GPU workers: Dockerfile.train); tests/config/test_web_without_torch.py keeps these running without it.
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
# Web, workers and beat run as an unprivileged user that owns only the media folders. Static files need no
# folder of their own: WhiteNoise serves them from where they lie (see STATIC_ROOT in config/settings.py).
RUN useradd --create-home --uid 10001 loopwork && mkdir -p /app/media /data/media \
    && chown -R loopwork:loopwork /app/media /data/media
USER loopwork
ENV DEBUG=0
EXPOSE 8000
