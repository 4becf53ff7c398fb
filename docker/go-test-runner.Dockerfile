# syntax=docker/dockerfile:1
# go-test-runner MCP server with a pinned Go toolchain: runs `go test -json` on a patch in a throwaway
# worktree. Go is this server's runtime, not a build tool of the image; there is no C compiler.
# Build from the repository root:  buildah build -f docker/go-test-runner.Dockerfile -t goresolve/go-test-runner:0.1.0 .
ARG PYTHON_IMAGE=docker.io/library/python:3.12.8-slim-bookworm
ARG GO_IMAGE=docker.io/library/golang:1.26.8-bookworm

FROM ${GO_IMAGE} AS go
# The toolchain only: no module cache, no build cache from this stage.
RUN go version && rm -rf /usr/local/go/pkg/tool/*/doc /usr/local/go/test

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/goresolve
COPY pyproject.toml README.md constraints.txt ./
COPY docker/requirements.py docker/requirements.py
RUN python docker/requirements.py image-go-test-runner > /tmp/requirements.txt \
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
RUN /opt/goresolve/bin/pip install --no-cache-dir --no-deps . \
 && /opt/goresolve/bin/pip uninstall -y pip

FROM ${PYTHON_IMAGE}
# git for worktrees; bubblewrap, util-linux and libseccomp for the sandbox where the kernel allows
# namespaces (under Pod Security "restricted" it does not: see the chart's goTestRunner values).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git bubblewrap util-linux libseccomp2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && (python -m pip uninstall -y pip setuptools wheel 2>/dev/null; true)
COPY --from=go /usr/local/go /usr/local/go
COPY --from=build /opt/goresolve /opt/goresolve
COPY policies /etc/goresolve/policies
ENV PATH=/opt/goresolve/bin:/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin \
    GOTOOLCHAIN=local \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GORESOLVE_DATA_DIR=/var/lib/goresolve \
    GORESOLVE_TOOLS_DIR=/opt/goresolve/tools
# The tamper analyzer and the sandbox's set-up program, compiled here once (golang.org/x/tools is
# fetched now, the standard library compiled now): a pod needs no module proxy for them and spends no
# minutes on its first patch. The server copies them from GORESOLVE_TOOLS_DIR (read-only at run time).
RUN GOCACHE=/tmp/go-build GOMODCACHE=/tmp/go-mod python -m servers.go_test_runner.prebuild \
 && chmod -R a+rX /opt/goresolve/tools \
 && rm -rf /tmp/go-build /tmp/go-mod
USER 10001:10001
ENTRYPOINT ["go-test-runner-mcp"]
