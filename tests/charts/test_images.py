"""Images: one Dockerfile per image, multi-stage and non-root, each installing only its own extra.

The import closure of each image's entry point (grimp, the graph import-linter uses, lazy imports
included) must be installable from that image's extra: a server that starts importing a new
package fails here before it fails in a container.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = REPO_ROOT / "docker"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
IMAGES = {
    "jira-read": "servers.jira_read.__main__",
    "code-search": "servers.code_search.__main__",
    "go-test-runner": "servers.go_test_runner.__main__",
    "github-pr": "servers.github_pr.__main__",
    "agent": "agent.dispatch.cli",
}
OURS = ("servers", "agent", "goresolve", "workqueue", "credentials", "yamlfiles", "pathglob", "jqlscope")
# Imported lazily by maintainer-only code paths, never when a server runs (grimp sees every import).
DEV_ONLY = {"detect-secrets"}  # credentials.rules regenerates its rule file from it


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def extra(name: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, str(DOCKER / "requirements.py"), name], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.split()


def installed_closure(requirements: list[str]) -> set[str]:
    """The distributions those requirements install (as installed in this environment)."""
    todo = [Requirement(r).name for r in requirements]
    seen: set[str] = set()
    while todo:
        name = norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for req in md.requires(name) or []:
            parsed = Requirement(req)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                todo.append(parsed.name)
    return seen


def test_every_image_extra_pins_exactly_what_the_dependencies_pin_and_covers_them_all() -> None:
    deps = set(PYPROJECT["dependencies"])
    used: set[str] = set()
    for image in IMAGES:
        reqs = extra(f"image-{image}")
        assert set(reqs) <= deps, f"image-{image}: {set(reqs) - deps} differ from [project] dependencies"
        used |= set(reqs)
    assert deps - used == set(), "dependencies no image installs"


def test_the_jira_read_image_has_no_lancedb_onnxruntime_or_kubernetes() -> None:
    closure = installed_closure(extra("image-jira-read"))
    assert {"lancedb", "onnxruntime", "pyarrow", "kubernetes", "pygithub"} & closure == set()


@functools.cache
def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*OURS, include_external_packages=True)


# Run in an image besides its entry point: the agent pod's shared-key `tokens` init container runs
# `goresolve token mint`, which needs only the token module.
# The agent's router embeds tickets with code-search's model (onnxruntime, tokenizers), and the
# agent image installs that model at build time (docker/agent.Dockerfile routes one ticket to prove it).
ALSO_RUN = {
    "agent-token-mint": ("agent", "servers.common.auth"),
    "agent-router-classifier": ("agent", "agent.router.embedder"),
    "agent-model-install": ("agent", "servers.code_search.minilm"),
    "agent-model-weights": ("agent", "servers.code_search.assets"),
}


@pytest.mark.parametrize(
    ("image", "module"), [*((i, m) for i, m in IMAGES.items()), *ALSO_RUN.values()], ids=[*IMAGES, *ALSO_RUN]
)
def test_each_entry_points_imports_are_installed_by_its_images_extra(image: str, module: str) -> None:
    graph = import_graph()
    external = {m.split(".")[0] for m in graph.find_upstream_modules(module)} - set(OURS)
    distributions = md.packages_distributions()
    needed = {norm(d) for top in external if top in distributions for d in distributions[top]}
    missing = needed - installed_closure(extra(f"image-{image}")) - DEV_ONLY
    assert missing == set(), f"{image}: imports {sorted(missing)} that the image-{image} extra does not install"


@pytest.mark.parametrize("image", IMAGES)
def test_each_dockerfile_is_multi_stage_non_root_pinned_and_installs_its_own_extra(image: str) -> None:
    text = (DOCKER / f"{image}.Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(stages) >= 2, "multi-stage"
    for arg in re.findall(r"^ARG \w+_IMAGE=(\S+)", text, re.M):
        assert re.search(r":[\w.-]+$", arg) and not arg.endswith(":latest"), f"unpinned base {arg}"
    runtime = text[text.rindex("\nFROM ") :]
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert "COPY --from=build /opt/goresolve" in runtime
    assert not re.search(r"\b(gcc|build-essential|make|g\+\+|clang)\b", runtime), "build tools in the runtime stage"
    assert f"requirements.py image-{image}" in text and "--no-deps ." in text
    assert "-c constraints.txt -r /tmp/requirements.txt" in text, "the image installs the versions CI tested"


def test_the_go_test_runner_image_carries_its_go_programs_prebuilt() -> None:
    """The analyzer and sandbox-setup are compiled at image build time into GORESOLVE_TOOLS_DIR, as root and
    before the runtime user takes over, so a pod without a module proxy can still check patches."""
    text = (DOCKER / "go-test-runner.Dockerfile").read_text(encoding="utf-8")
    runtime = text[text.rindex("\nFROM ") :]
    assert "GORESOLVE_TOOLS_DIR=/opt/goresolve/tools" in runtime
    prebuild = runtime.index("python -m servers.go_test_runner.prebuild")
    assert runtime.index("GORESOLVE_TOOLS_DIR=") < prebuild < runtime.index("USER 10001:10001")


def constraints() -> dict[str, str]:
    """constraints.txt: the version of each distribution CI last tested, by normalized name."""
    pins: dict[str, str] = {}
    for line in (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version.strip(), f"constraints.txt: {line!r} is not name==version"
            pins[norm(name)] = version.strip()
    return pins


def test_constraints_pin_every_dependency_at_a_version_pyproject_allows() -> None:
    pins = constraints()
    for req in [*PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"]["dev"]]:
        parsed = Requirement(req)
        name = norm(parsed.name)
        assert name in pins, f"{parsed.name} is not in constraints.txt"
        assert parsed.specifier.contains(pins[name], prereleases=True), f"{parsed.name}=={pins[name]} breaks {req!r}"


def test_constraints_pin_the_whole_installed_closure_and_are_what_is_installed() -> None:
    pins = constraints()
    reqs = [*PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"]["dev"]]
    closure = installed_closure(reqs) - {"pip", "setuptools"}
    assert closure - set(pins) == set(), "installed but not pinned: refresh constraints.txt"
    drift = {name: (pins[name], md.version(name)) for name in closure if md.version(name) != pins[name]}
    assert drift == {}, "installed versions differ from constraints.txt (pinned, installed)"


def test_the_readme_and_the_test_script_install_with_the_constraints() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    script = (REPO_ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "pip install -q -c constraints.txt -e ." in readme
    assert "pip install --quiet -c constraints.txt -e '.[dev]'" in script
