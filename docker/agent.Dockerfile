# syntax=docker/dockerfile:1
# the agent, the dispatcher (goresolve dispatch) and the webhook gateway (goresolve serve webhooks).
# Build from the repository root:  buildah build -f docker/agent.Dockerfile -t goresolve/agent:0.1.0 .
ARG PYTHON_IMAGE=docker.io/library/python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/goresolve
COPY pyproject.toml README.md constraints.txt ./
COPY docker/requirements.py docker/requirements.py
# Dependencies first (a layer that changes only with pyproject.toml), then the package without its
# full dependency list: the image gets the image-agent extra and nothing else.
RUN python docker/requirements.py image-agent > /tmp/requirements.txt \
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
# The router's offline classifier embeds tickets with code-search's model: install and build it here
# (pinned by version and SHA-256, no torch), then route one ticket so the labelled examples' vectors
# are cached beside it; at run time the directory is read-only and nothing is downloaded.
RUN /opt/goresolve/bin/python -c "from pathlib import Path; from servers.code_search import assets, minilm; \
models = Path('/opt/goresolve/models'); assets.install_weights(models); print(minilm.ensure_model(models))" \
 && printf '# Export fails\n\nThe export of a large project fails.\n' > /tmp/T-1.md \
 && GORESOLVE_ROUTER_MODELS_DIR=/opt/goresolve/models GORESOLVE_ROUTER_POLICY_DIR=/src/policies \
    /opt/goresolve/bin/goresolve route /tmp/T-1.md --json > /tmp/T-1.json \
 && /opt/goresolve/bin/python -c "import json,sys; d=json.load(open('/tmp/T-1.json')); sys.exit(0 if d['classifier'] else 'the routing classifier did not load')" \
 && rm /tmp/T-1.md /tmp/T-1.json \
 && chmod -R a+rX /opt/goresolve/models
# No installer in the runtime image, and no onnx (it only built the model above).
RUN /opt/goresolve/bin/pip uninstall -y onnx pip

FROM ${PYTHON_IMAGE}

RUN python -m pip uninstall -y pip setuptools wheel 2>/dev/null; rm -rf /root/.cache
COPY --from=build /opt/goresolve /opt/goresolve
COPY policies /etc/goresolve/policies
ENV PATH=/opt/goresolve/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GORESOLVE_DATA_DIR=/var/lib/goresolve \
    GORESOLVE_ROUTER_MODELS_DIR=/opt/goresolve/models
# The chart runs every container as 10001 with a read-only root filesystem and emptyDir scratch.
USER 10001:10001
ENTRYPOINT ["goresolve"]
