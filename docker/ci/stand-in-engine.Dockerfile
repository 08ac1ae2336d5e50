# CI only: a stand-in for "your engine's image" (Aria's in docs/docker.md) to test
# docker-compose.real-engine.yml without a registry. An image that knows nothing of memsoak: its
# own dependencies, its code in /app as WORKDIR, a non-root user (uid 1000), its own command. The
# code is memsoak's demo engine, run as a plain application (`python -m demo_engine`).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install "fastapi>=0.110" "uvicorn[standard]>=0.29" "psycopg[binary]>=3.1" \
 && useradd --create-home --uid 1000 app
WORKDIR /app
COPY memsoak/demo_engine ./demo_engine
USER app
EXPOSE 8000
CMD ["python", "-m", "demo_engine", "--host", "0.0.0.0", "--port", "8000"]
