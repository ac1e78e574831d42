FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY . .
# torch first, as in the Makefile; on a GPU host install the CUDA build of the same version instead.
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir -e .
# Web, workers and beat run as an unprivileged user that owns only the media and static folders.
RUN useradd --create-home --uid 10001 loopwork && mkdir -p /app/media /app/staticfiles /data/media \
    && chown -R loopwork:loopwork /app/media /app/staticfiles /data/media
USER loopwork
ENV DEBUG=0
EXPOSE 8000
