"""The runner's host-side steps read a checkout's module files only when they are regular files of it.

A repository (any branch, or a pull request's ref the mirror fetches) that commits `go.mod` as a
symlink (git mode 120000) to a host file must not get that file's lines back through go's errors;
one pointing at /dev/zero, or a huge go.mod, must not freeze the server. Each is refused with an
InvalidInput naming the file and the reason; go's own output from `go mod download` (which may quote
what it read) goes to the error's detail (logged), never to its message.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import time
from typing import Any

import pytest

from servers.common.errors import InvalidInput, UpstreamFailure
from servers.go_test_runner.payload import CheckBuildRequest, RunTestsRequest
from servers.go_test_runner.repo_files import MAX_GO_MOD_BYTES, RepoFileRefused, read_repo_file
from servers.go_test_runner.runner import Runner

from .conftest import commit_all, git, make_runner_for

GO_MOD = "module example.com/m\n\ngo 1.22\n"
A_GO = "package a\n\n// A is one.\nfunc A() int { return 1 }\n"
A_TEST = 'package a\n\nimport "testing"\n\nfunc TestA(t *testing.T) {\n\tif A() != 1 {\n\t\tt.Fatal("A")\n\t}\n}\n'


def make_repo(root: pathlib.Path, files: dict[str, str | tuple[str, str]]) -> pathlib.Path:
    """A git repository on main with `files`; ("symlink", target) commits a symlink (mode 120000)."""
    repo = root / "repo"
    repo.mkdir()
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            os.symlink(content[1], path)
        else:
            path.write_text(content)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "fixture")
    for name, content in files.items():
        if isinstance(content, tuple):
            assert git(repo, "ls-files", "-s", "--", name).startswith("120000 ")
    return repo


def runner_on(repo: pathlib.Path, tmp_path: pathlib.Path, **overrides: Any) -> Runner:
    return make_runner_for({"hostile": repo}, tmp_path, **overrides)


@pytest.fixture
def secret_file(tmp_path: pathlib.Path) -> tuple[pathlib.Path, str]:
    value = f"ghp_{secrets.token_hex(16)}"
    path = tmp_path / "host-secret.env"
    path.write_text(f"SECRET={value}\nOTHER=1\n")
    return path, value


def assert_hidden(exc: BaseException, value: str) -> None:
    assert value not in str(exc)
    assert value not in (getattr(exc, "detail", None) or "")
    assert "SECRET" not in str(exc)


async def test_a_go_mod_symlinked_to_a_host_file_is_refused_and_not_read(
    tmp_path: pathlib.Path, secret_file: tuple[pathlib.Path, str]
) -> None:
    path, value = secret_file
    repo = make_repo(tmp_path, {"go.mod": ("symlink", str(path)), "go.sum": "", "a/a.go": A_GO})
    runner = runner_on(repo, tmp_path)
    with pytest.raises(RepoFileRefused) as raised:
        await runner.run_tests(RunTestsRequest(repo="hostile", ref="main", packages=["./..."]))
    assert isinstance(raised.value, InvalidInput)
    assert "go.mod is a symbolic link" in raised.value.message
    assert_hidden(raised.value, value)


async def test_a_pull_request_ref_with_a_symlinked_go_mod_is_refused(
    tmp_path: pathlib.Path, secret_file: tuple[pathlib.Path, str]
) -> None:
    """main is benign; only refs/pull/1/head (which the mirror fetches) commits the symlink."""
    path, value = secret_file
    repo = make_repo(tmp_path, {"go.mod": GO_MOD, "go.sum": "", "a/a.go": A_GO})
    git(repo, "checkout", "-q", "-b", "contrib")
    (repo / "go.mod").unlink()
    os.symlink(str(path), repo / "go.mod")
    commit_all(repo, "outsider")
    assert git(repo, "ls-files", "-s", "--", "go.mod").startswith("120000 ")
    git(repo, "update-ref", "refs/pull/1/head", "HEAD")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-D", "contrib")
    runner = runner_on(repo, tmp_path)
    with pytest.raises(RepoFileRefused) as raised:
        await runner.check_build(CheckBuildRequest(repo="hostile", ref="refs/pull/1/head", packages=["./..."]))
    assert_hidden(raised.value, value)


async def test_a_go_sum_or_go_work_symlink_is_refused(
    tmp_path: pathlib.Path, secret_file: tuple[pathlib.Path, str]
) -> None:
    path, value = secret_file
    repo = make_repo(tmp_path, {"go.mod": GO_MOD, "go.sum": ("symlink", str(path)), "a/a.go": A_GO})
    runner = runner_on(repo, tmp_path)
    with pytest.raises(RepoFileRefused, match=r"go\.sum is a symbolic link") as raised:
        await runner.run_tests(RunTestsRequest(repo="hostile", ref="main", packages=["./..."]))
    assert_hidden(raised.value, value)
    await runner.shutdown()

    other = tmp_path / "other"
    other.mkdir()
    repo = make_repo(other, {"go.mod": GO_MOD, "go.work": ("symlink", str(path)), "a/a.go": A_GO})
    runner = runner_on(repo, other)
    with pytest.raises(RepoFileRefused, match=r"go\.work is a symbolic link") as raised:
        await runner.run_tests(RunTestsRequest(repo="hostile", ref="main", packages=["./..."]))
    assert_hidden(raised.value, value)


async def test_a_go_mod_symlinked_to_dev_zero_is_refused_at_once(tmp_path: pathlib.Path) -> None:
    repo = make_repo(tmp_path, {"go.mod": ("symlink", "/dev/zero"), "a/a.go": A_GO, "a/a_test.go": A_TEST})
    runner = runner_on(repo, tmp_path)
    started = time.monotonic()
    with pytest.raises(RepoFileRefused, match=r"go\.mod is a symbolic link"):
        await runner.run_tests(RunTestsRequest(repo="hostile", ref="main", packages=["./..."]))
    assert time.monotonic() - started < 30


async def test_a_huge_go_mod_is_refused(tmp_path: pathlib.Path) -> None:
    huge = GO_MOD + ("// padding " + "x" * 100 + "\n") * (MAX_GO_MOD_BYTES // 100 + 1)
    repo = make_repo(tmp_path, {"go.mod": huge, "go.sum": "", "a/a.go": A_GO})
    runner = runner_on(repo, tmp_path)
    with pytest.raises(RepoFileRefused, match=r"go\.mod is larger than 1 MiB"):
        await runner.run_tests(RunTestsRequest(repo="hostile", ref="main", packages=["./..."]))


async def test_go_mod_download_errors_are_not_returned(tmp_path: pathlib.Path) -> None:
    """go's errors may quote what it read: the message says only that it failed; the detail (logged) has them."""
    word = f"secretword{secrets.token_hex(8)}"
    go_mod = GO_MOD + f"\nrequire example.com/{word} v1.0.0\n"
    repo = make_repo(tmp_path, {"go.mod": go_mod, "go.sum": "", "a/a.go": A_GO})
    runner = runner_on(repo, tmp_path, goproxy="off")
    with pytest.raises(UpstreamFailure) as raised:
        await runner.run_tests(RunTestsRequest(repo="hostile", ref="main", packages=["./..."]))
    assert raised.value.message.startswith("go mod download failed (exit 1) in the root module; see the server log")
    assert word not in raised.value.message
    assert word in (raised.value.detail or "")


async def test_a_normal_module_still_runs(tmp_path: pathlib.Path) -> None:
    repo = make_repo(tmp_path, {"go.mod": GO_MOD, "go.sum": "", "a/a.go": A_GO, "a/a_test.go": A_TEST})
    runner = runner_on(repo, tmp_path)
    result = await runner.run_tests(RunTestsRequest(repo="hostile", ref="main", packages=["./..."]))
    assert result.ok, result.summary
    assert [p.name for p in result.report.packages] == ["example.com/m/a"]


def test_read_repo_file_refuses_what_is_not_a_regular_file_inside(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "wt"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "go.mod").write_text(GO_MOD)
    assert read_repo_file(root, "sub/go.mod") == GO_MOD.encode()
    assert read_repo_file(root, "absent/go.mod") is None
    assert read_repo_file(root, "go.sum") is None
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "go.mod").write_text("SECRET=1\n")
    (root / "linked").symlink_to(outside)
    with pytest.raises(RepoFileRefused, match="below a symbolic link"):
        read_repo_file(root, "linked/go.mod")
    os.mkfifo(root / "go.mod")  # a FIFO with no writer: opening it must not block
    with pytest.raises(RepoFileRefused, match="not a regular file"):
        read_repo_file(root, "go.mod")
    (root / "go.mod").unlink()
    (root / "go.mod").mkdir()
    with pytest.raises(RepoFileRefused, match="not a regular file"):
        read_repo_file(root, "go.mod")
    with pytest.raises(RepoFileRefused, match="not a path inside"):
        read_repo_file(root, "../outside/go.mod")
    (root / "go.sum").write_bytes(b"x" * 100)
    with pytest.raises(RepoFileRefused, match="larger than"):
        read_repo_file(root, "go.sum", limit=10)
