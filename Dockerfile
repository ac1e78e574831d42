FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY . .
# torch first, as in the Makefile; on a GPU host install the CUDA build of the same version instead.
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir -e .
ENV DEBUG=0
EXPOSE 8000
