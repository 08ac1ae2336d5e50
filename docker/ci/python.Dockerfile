# CI stand-in for python:3.11-slim (see README.md; real users pull the official image).
# What the project relies on from the official layout: `python` and `pip` on PATH and a
# /usr/local that root may pip-install into (a plain Debian python3 refuses, PEP 668). A venv AT
# /usr/local gives exactly that with Debian's Python 3.11; Python.h is there for C extensions.
ARG BASE
FROM ${BASE}
RUN python3 -m venv /usr/local \
 && /usr/local/bin/python -m pip --version >/dev/null
CMD ["python3"]
