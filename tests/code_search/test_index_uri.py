"""code-search's index on an object store: GORESOLVE_CODE_SEARCH_INDEX_URI is validated at start-up and
handed to LanceDB as it is. A file:// URI is the object-store code path that runs without a network."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.search import Searcher
from servers.code_search.settings import CodeSearchSettings, check_index_uri, open_index
from servers.common.errors import ConfigError, UpstreamFailure
from servers.common.settings import load_settings

VAR = "GORESOLVE_CODE_SEARCH_INDEX_URI"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://goresolve-index/prod",
        "s3+ddb://goresolve-index/prod?ddbTableName=commits",
        "gs://goresolve-index",
        "az://container/index",
        "file:///var/lib/goresolve-index",
    ],
)
def test_object_store_and_file_uris_are_accepted_unchanged(uri: str, tmp_path: Path) -> None:
    settings = load_settings(CodeSearchSettings, index_uri=uri, state_dir=tmp_path)
    assert settings.index_uri == uri


@pytest.mark.parametrize(
    ("uri", "complaint"),
    [
        ("/var/lib/index", "must be a URI starting with one of s3://"),
        ("http://minio:9000/index", "must be a URI starting with one of"),
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://bucket/x?region=eu", "takes no query"),
        ("gs://bucket/x#frag", "takes no query or fragment"),
        ("file://relative/index", "absolute directory"),
        ("file:///", "absolute directory"),
        ("s3://bucket/with space", "must be a URI"),
        ("s3://bucket:notaport/x", "not a URI"),
    ],
)
def test_a_uri_lancedb_cannot_use_is_refused_naming_the_variable(uri: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(CodeSearchSettings, index_uri=uri)
    assert refused.value.message.startswith(f"setting {VAR}: ")
    assert complaint in refused.value.message


def test_credentials_in_the_uri_are_refused_and_never_repeated() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(CodeSearchSettings, index_uri="s3://AKIAEXAMPLE:hunter2-secret@bucket/index")
    assert "must not carry credentials" in refused.value.message
    assert "hunter2" not in refused.value.message and "AKIA" not in refused.value.message


_LABEL = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
_PATH = st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True), max_size=4).map("/".join)


@given(st.sampled_from(["s3", "gs", "az"]), _LABEL, _PATH)
def test_any_bucket_and_prefix_is_accepted(scheme: str, bucket: str, prefix: str) -> None:
    uri = f"{scheme}://{bucket}/{prefix}"
    assert check_index_uri(uri) == uri


@given(st.sampled_from(["s3", "gs", "az", "s3+ddb"]), _LABEL, _LABEL, _PATH)
def test_any_uri_with_user_info_is_refused(scheme: str, user: str, bucket: str, prefix: str) -> None:
    with pytest.raises(ValueError, match="credentials"):
        check_index_uri(f"{scheme}://{user}:{user}@{bucket}/{prefix}")


def test_an_index_written_and_read_through_a_file_uri_is_searchable(shapes: Path, tmp_path: Path) -> None:
    embedder = HashingEmbedder(dim=128)
    store = tmp_path / "store"
    locks = tmp_path / "locks"
    writer = CodeIndex(locks, embedder.model_id, embedder.dim, create=True, uri=store.as_uri())
    report = index_repo(writer, embedder, shapes, "shapes")
    assert report.chunks > 10
    # The tables are in the store, not in the lock directory.
    assert any(p.name.endswith("__repos.lance") for p in store.iterdir())
    assert not any(p.suffix == ".lance" for p in locks.rglob("*"))

    settings = load_settings(CodeSearchSettings, index_uri=store.as_uri(), state_dir=tmp_path / "reader")
    reader = open_index(settings, embedder)
    views = reader.views(["shapes"])
    assert [v.repo for v in views] == ["shapes"]
    hit = Searcher(reader, embedder).search("NewCircle", views, k=1, mode="fts")[0]
    assert hit.symbol == "shapes.NewCircle"


def test_a_missing_index_at_a_uri_is_an_upstream_failure_not_a_crash(tmp_path: Path) -> None:
    settings = load_settings(CodeSearchSettings, index_uri=(tmp_path / "empty").as_uri(), state_dir=tmp_path)
    with pytest.raises(UpstreamFailure, match="missing or corrupt"):
        open_index(settings, HashingEmbedder(dim=128))
