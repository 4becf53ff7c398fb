# syntax=docker/dockerfile:1
# github-pr MCP server: git and the GitHub API, nothing else.
# Build from the repository root:  buildah build -f docker/github-pr.Dockerfile -t goresolve/github-pr:0.1.0 .
ARG PYTHON_IMAGE=docker.io/library/python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/goresolve
COPY pyproject.toml README.md constraints.txt ./
COPY docker/requirements.py docker/requirements.py
# Dependencies first (a layer that changes only with pyproject.toml), then the package without its
# full dependency list: the image gets the image-github-pr extra and nothing else.
RUN python docker/requirements.py image-github-pr > /tmp/requirements.txt \
 && /opt/goresolve/bin/pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt
COPY servers servers
COPY agent agent
COPY goresolve goresolve
COPY workqueue workqueue
COPY credentials credentials
COPY yamlfiles yamlfiles
COPY pathglob pathglob
COPY jqlscope jqlscope
COPY policies policies
RUN /opt/goresolve/bin/pip install --no-cache-dir --no-deps .
# No installer in the runtime image.
RUN /opt/goresolve/bin/pip uninstall -y pip

FROM ${PYTHON_IMAGE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*
RUN python -m pip uninstall -y pip setuptools wheel 2>/dev/null; rm -rf /root/.cache
COPY --from=build /opt/goresolve /opt/goresolve
COPY policies /etc/goresolve/policies
ENV PATH=/opt/goresolve/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GORESOLVE_DATA_DIR=/var/lib/goresolve
# The chart runs every container as 10001 with a read-only root filesystem and emptyDir scratch.
USER 10001:10001
ENTRYPOINT ["github-pr-mcp"]
