# syntax=docker/dockerfile:1
# jira-read MCP server: reads Jira, nothing else (no git, no lancedb, no onnxruntime).
# Build from the repository root:  buildah build -f docker/jira-read.Dockerfile -t goresolve/jira-read:0.1.0 .
ARG PYTHON_IMAGE=docker.io/library/python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/goresolve
COPY pyproject.toml README.md constraints.txt ./
COPY docker/requirements.py docker/requirements.py
# Dependencies first (a layer that changes only with pyproject.toml), then the package without its
# full dependency list: the image gets the image-jira-read extra and nothing else.
RUN python docker/requirements.py image-jira-read > /tmp/requirements.txt \
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

RUN python -m pip uninstall -y pip setuptools wheel 2>/dev/null; rm -rf /root/.cache
COPY --from=build /opt/goresolve /opt/goresolve
COPY policies /etc/goresolve/policies
ENV PATH=/opt/goresolve/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GORESOLVE_DATA_DIR=/var/lib/goresolve
# The chart runs every container as 10001 with a read-only root filesystem and emptyDir scratch.
USER 10001:10001
ENTRYPOINT ["jira-read-mcp"]
