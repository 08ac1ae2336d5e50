# CI stand-in for locustio/locust:2.47.0 (see README.md; real users pull the official image).
# The official layout: Locust in a venv at /opt/venv first on PATH, user `locust` (uid 1000) with
# home and working directory /home/locust, `locust` as the entrypoint, ports 8089 and 5557.
ARG BASE
FROM ${BASE}
ARG LOCUST_VERSION=2.47.0
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir "locust==${LOCUST_VERSION}" \
 && useradd --create-home --uid 1000 locust
USER locust
WORKDIR /home/locust
EXPOSE 8089 5557
ENTRYPOINT ["locust"]
