"""Hybrid retrieval: full-text + vector + exact names, fused by reciprocal rank; token-budget packing.

Every list is computed inside the index with the caller's prefilter (allowed repos at their
published generation, plus optional kinds and path prefix), so top-k is filled from rows the
caller may read. The lists (full text, vector, units whose name the query mentions, units of
files it names, its quoted error strings, its traceback frames) are fused with weighted reciprocal
rank fusion (RRF, k=60; k=2 for frames, so the innermost frame of a panic leads).

The similarity part of the fused score (full text, vector, error strings) is then weighed by
priors (chosen on benchmark 5's dev split, checked on its held-out repos and on benchmark 4):
functions, methods and line windows count fully and other units (types, const/var blocks, package
docs, Markdown) half; and when the query reads like a bug report, longer units count more, as
(tokens/100)^0.3 with tokens clamped to [10, 2000] -- the classic bug-localization length prior
(fixes land in big functions, which BM25 and short embeddings under-rank). The length prior is
not used for descriptive queries: there it buries short units (benchmark 4 unit MRR 0.44 -> 0.17).
Exact matches (names, paths, traceback frames) are not weighed: a traceback's frames still lead,
and on benchmark 5's raw commit messages (which name the changed code) function recall rose too.

A filed report (`ParsedQuery.report`: a long query with headings, code or log blocks, or template
sections; the ticket is read by servers.code_search.ticket) adds lists: the title on its own, each
error string and log message on its own (merged into one list), and whole files ranked by BM25
over their full text, whose rank every unit of the file shares. For reports the length prior is
off. Both choices were made on the ticket localization set's dev repositories (bench/
ticket_localization.py; file recall@5 0.79 -> 0.84, function recall@10 0.48 -> 0.52 identifier-
stripped, static embedder) and leave benchmark 5 unchanged (8 of its 190 commit messages are
reports; long commit messages keep the prior, which helps there). A report's lists are weighed by
REPORT_WEIGHTS (its title counts twice, its one vector half), chosen on the same dev repositories
with each left out in turn (bench/code_search_replay.py --loro).

The index holds the tests too, and a ticket's words match its tests as well as the code they test
(the tests repeat the names and the scenario). For a ticket (any long query) a test unit counts a
quarter of its score, and a quarter of its similarity goes to the code it tests: the units of the
file it tests (`foo_test.go` -> `foo.go`) and the function its name names (`subjects_of_tests`); a
test file in a report's whole-file list passes its rank to the file it tests (`files_under_test`).
On the ticket set's dev repositories indexed with their tests, file recall@5 0.75 -> 0.86 and
function recall@10 0.49 -> 0.60 (identifier-stripped); an index without tests (benchmark 5's) is
ranked as before.

A filed report is also matched against the repository's own history (the classic "similar past fixes" signal of
bug localization): the index keeps the last 3,000 commit messages of each indexed commit with the non-test .go files
each changed (`CodeIndex.history`, filtered like every list by the caller's repos and generations). The files of
the 10 messages that best match the whole ticket (BM25) are ranked (`files_of_commits`), and the best non-test
unit of each ranked file gets its share as an exact match (lifting all its units cost function recall on dev).
Chosen on the ticket set's dev repositories (10 commits, weight 1, by most left-out folds; bench/
code_search_replay.py --loro-history; filed reports only, which on dev kept file recall and gained function
recall, and leaves all but 8 of benchmark 5's commit messages alone); on held-out, file recall@5 0.536 -> 0.570
identifier-stripped (docs/benchmarks.md).

`rank` is a pure function of what `gather` returns, so recorded lists can be replayed through it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

from servers.code_search.embed import Embedder
from servers.code_search.filters import RepoView, any_of, narrow, quote, visible
from servers.code_search.model import Hit, code_text
from servers.code_search.query import ParsedQuery, parse_query

if TYPE_CHECKING:  # lancedb loads in a few seconds: only when an index is opened
    from servers.code_search.index import CodeIndex

Mode = Literal["hybrid", "fts", "vector"]
RRF_K = 60
WEIGHTS = {"fts": 1.0, "vector": 1.0, "symbol": 1.0, "frame": 3.0, "path": 0.5, "error": 1.0, "title": 1.0, "file": 1.0}
# A ticket asks where to fix something, and the index holds the tests too (the server's default): a test unit
# that matches a ticket counts TEST_WEIGHT of its score, and passes TEST_EVIDENCE of its similarity to the code it
# tests (`subjects_of_tests`). Tickets only (filed reports and other long queries); chosen on the ticket set's dev
# repositories indexed with their tests, each left out in turn (bench/code_search_replay.py --loro-tests): every
# fold chose evidence 0.25, two of three test weight 0.25 (see docs/benchmarks.md).
TEST_WEIGHT = 0.25
TEST_EVIDENCE = 0.25
TICKET_WEIGHTS = {**WEIGHTS, "test": TEST_WEIGHT, "test_evidence": TEST_EVIDENCE}
# A filed report: its title is its densest sentence, and one vector for a long report says less than for a short
# query. Chosen on the ticket set's dev repositories, each left out in turn (bench/code_search_replay.py --loro):
# every fold chose title 2, two of three vector 0.5; the error and file weights stay (see docs/benchmarks.md).
REPORT_WEIGHTS = {**TICKET_WEIGHTS, "title": 2.0, "vector": 0.5, "history": 1.0}
# Traceback frames keep their order: the innermost frame named in a panic is where to look first.
RANK_K = {"frame": 2}
# Lists whose contribution the priors scale; the others are exact matches and count as they are.
SIMILARITY = frozenset({"fts", "vector", "error", "title", "file"})
CODE_KINDS = frozenset({"func", "method", "window"})  # window: code of a file that did not parse
NON_CODE_WEIGHT = 0.5
LENGTH_EXPONENT = 0.3
LENGTH_RANGE = (10, 2000)
CANDIDATES = 100
FILE_CANDIDATES = 30
MAX_MESSAGES = 6  # error strings and log messages searched on their own
HISTORY_CANDIDATES = 10  # past commits whose messages best match a report; their files are the history list
HISTORY_RANK_K = 10
HISTORY_MAX_WORDS = 300
_TEST_FILE = "_test.go"
_TEST_FUNC = re.compile(r"^(?:Test|Benchmark|Fuzz|Example)_?")
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_SAFE_PATH = re.compile(r"^[\w.@+-]{1,200}$")


@dataclass(frozen=True, slots=True)
class Candidates:
    """The ranked lists of one query before fusion: units per list name, whole files (repo, path), and the files
    the past commits most like the query changed (a filed report's history list)."""

    lists: dict[str, list[Hit]]
    files: list[tuple[str, str]]
    history: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Packed:
    """Whole units in rank order that fit a token budget, and how many did not fit."""

    hits: list[Hit]
    tokens: int
    omitted: int


def prior(hit: Hit, bug_report: bool = False) -> float:
    """How likely a unit is to be what the query is after, before reading the query's words."""
    weight = 1.0 if hit.kind in CODE_KINDS else NON_CODE_WEIGHT
    if bug_report:
        low, high = LENGTH_RANGE
        weight *= (min(max(hit.tokens, low), high) / 100) ** LENGTH_EXPONENT
    return weight


def is_test(path: str) -> bool:
    return path.endswith(_TEST_FILE)


def subjects_of_tests(units: Mapping[str, Hit]) -> dict[str, list[str]]:
    """For each test unit among `units` (key -> hit), the keys of the non-test units it is evidence for.

    A test names its subject twice: by file (`foo_test.go` tests `foo.go` in the same directory: every unit of it
    among `units`) and by name (`TestParseTerms`, `TestParseTermsExtended` or `TestTerminal_Loop` test
    `parseTerms`/`Loop` of the same package: the longest unit name the test's name starts with, 3+ letters).
    Linear in the units (a ticket's lists hold a few hundred): dictionaries per directory, not pairs.
    """
    files: dict[tuple[str, str], list[str]] = {}  # (repo, path) -> keys
    names: dict[tuple[str, str], dict[str, list[str]]] = {}  # (repo, directory) -> lower-case name -> keys
    tests: list[tuple[str, Hit]] = []
    for key, hit in units.items():
        if is_test(hit.path):
            tests.append((key, hit))
            continue
        files.setdefault((hit.repo, hit.path), []).append(key)
        directory = names.setdefault((hit.repo, hit.path.rpartition("/")[0]), {})
        directory.setdefault(hit.symbol.rsplit(".", 1)[-1].lower(), []).append(key)
    lengths = {d: sorted({len(n) for n in by_name if len(n) >= 3}, reverse=True) for d, by_name in names.items()}
    out: dict[str, list[str]] = {}
    for key, hit in tests:
        subjects = list(files.get((hit.repo, hit.path[: -len(_TEST_FILE)] + ".go"), []))
        name = hit.symbol.rsplit(".", 1)[-1]
        prefix = _TEST_FUNC.match(name)
        peers = names.get((hit.repo, hit.path.rpartition("/")[0]))
        if prefix and peers:
            tail = name[prefix.end() :]
            named = sorted({tail.replace("_", "").lower(), tail.rpartition("_")[2].lower()})  # TestType_Method
            longest = max(map(len, named))
            for length in lengths[(hit.repo, hit.path.rpartition("/")[0])]:  # its peers' name lengths, longest first
                if length > longest:
                    continue
                matched = [k for n in named if len(n) >= length for k in peers.get(n[:length], ())]
                if matched:
                    subjects += [k for k in dict.fromkeys(matched) if k not in subjects]
                    break
        if subjects:
            out[key] = subjects
    return out


def files_under_test(files: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """A ranking of whole files with each test file replaced by the file it tests (`foo_test.go` -> `foo.go`)."""
    out: dict[tuple[str, str], None] = {}
    for repo, path in files:
        out.setdefault((repo, path[: -len(_TEST_FILE)] + ".go" if is_test(path) else path), None)
    return list(out)


def files_of_commits(commits: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, str]]:
    """The files of ranked commits, (repo, path) best first: each file scores 1/(HISTORY_RANK_K + rank) per commit
    that changed it, so a file that the best-matching commit changed, or that several matching commits changed,
    leads."""
    scores: dict[tuple[str, str], float] = {}
    for rank, (repo, paths) in enumerate(commits):
        for path in paths:
            scores[(repo, path)] = scores.get((repo, path), 0.0) + 1.0 / (HISTORY_RANK_K + rank)
    return sorted(scores, key=lambda f: -scores[f])  # stable: ties keep the order they were first seen in


def fuse(
    lists: dict[str, list[Hit]],
    k: int,
    bug_report: bool = False,
    files: Sequence[tuple[str, str]] = (),
    weights: Mapping[str, float] = WEIGHTS,
    named: Collection[str] = (),
    history: Sequence[tuple[str, str]] = (),
) -> list[Hit]:
    """Weighted reciprocal rank fusion of ranked lists; each unit keeps its best-scoring metadata.

    `files` is a ranking of whole files, (repo, path) best first: every unit of a ranked file gets
    that file's share, so a file that matches everywhere lifts its units. The similarity lists'
    share of a unit's score (files included) is multiplied by its `prior`. `weights` weigh each list;
    their "test" and "test_evidence" entries weigh test units (a test whose name is in `named`, the
    names the query gives, keeps its weight). `history` is a ranking of files that the past commits most like the
    query changed: the best non-test unit of each ranked file gets its "history" share as it is (no prior), so the
    file moves up without its other units crowding the functions of other files out.
    """
    similar: dict[str, float] = {}
    exact: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for name, hits in lists.items():
        weight = weights.get(name, 1.0)
        k_const = RANK_K.get(name, RRF_K)
        part = similar if name in SIMILARITY else exact
        for rank, hit in enumerate(hits):
            part[hit.key] = part.get(hit.key, 0.0) + weight / (k_const + rank + 1)
            first.setdefault(hit.key, hit)
    test_weight, evidence = weights.get("test", 1.0), weights.get("test_evidence", 0.0)
    if evidence:  # a test file ranked as a whole passes its rank to the file it tests
        files = files_under_test(files)
    file_rank = {f: rank for rank, f in reversed(list(enumerate(files)))}
    for key, hit in first.items():
        rank = file_rank.get((hit.repo, hit.path))
        if rank is not None:
            similar[key] = similar.get(key, 0.0) + weights.get("file", 1.0) / (RRF_K + rank + 1)
    if evidence:  # a test that matches is evidence for the code it tests (the strongest such test counts)
        lift: dict[str, float] = {}
        for key, subjects in subjects_of_tests(first).items():
            for subject in subjects:
                lift[subject] = max(lift.get(subject, 0.0), evidence * similar.get(key, 0.0))
        for subject, value in lift.items():
            similar[subject] = similar.get(subject, 0.0) + value
    if test_weight != 1.0:  # what a test shares with the ticket's words; a test the ticket names counts in full
        weighed = {k for k, hit in first.items() if is_test(hit.path) and hit.symbol.rsplit(".", 1)[-1] not in named}
        similar = {key: value * (test_weight if key in weighed else 1.0) for key, value in similar.items()}
    scores = {key: similar.get(key, 0.0) * prior(hit, bug_report) + exact.get(key, 0.0) for key, hit in first.items()}
    history_weight = weights.get("history", 0.0)
    if history and history_weight:  # the best unit of each file the history ranks gets the file's share
        history_rank = {f: rank for rank, f in reversed(list(enumerate(history)))}
        lifted: set[tuple[str, str]] = set()
        for key in sorted(scores, key=lambda key: -scores[key]):
            hit = first[key]
            rank = history_rank.get((hit.repo, hit.path))
            if rank is not None and not is_test(hit.path) and (hit.repo, hit.path) not in lifted:
                lifted.add((hit.repo, hit.path))
                scores[key] += history_weight / (RRF_K + rank + 1)
    order = sorted(scores, key=lambda key: -scores[key])[:k]
    out: list[Hit] = []
    for key in order:
        hit = first[key]
        hit.score = round(scores[key], 6)
        out.append(hit)
    return out


def pack(hits: Sequence[Hit], budget: int) -> Packed:
    """Fill `budget` tokens with whole units in rank order; a unit that does not fit is skipped."""
    used = 0
    kept: list[Hit] = []
    for hit in hits:
        if used + hit.tokens <= budget:
            kept.append(hit)
            used += hit.tokens
    return Packed(kept, used, len(hits) - len(kept))


def merge(ranked: Sequence[list[Hit]]) -> list[Hit]:
    """Reciprocal rank fusion of same-kind lists into one (each error string or log line searched alone)."""
    if len(ranked) == 1:
        return ranked[0]
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits in ranked:
        for rank, hit in enumerate(hits):
            scores[hit.key] = scores.get(hit.key, 0.0) + 1.0 / (RRF_K + rank + 1)
            first.setdefault(hit.key, hit)
    return [first[key] for key in sorted(scores, key=lambda key: -scores[key])]


def rank(
    parsed: ParsedQuery,
    found: Candidates,
    k: int,
    report_weights: Mapping[str, float] = REPORT_WEIGHTS,
    ticket_weights: Mapping[str, float] = TICKET_WEIGHTS,
) -> list[Hit]:
    """The hybrid ranking of one query's gathered lists (pure: bench/code_search_replay.py replays it)."""
    # A filed report describes symptoms, not the change: the length prior (chosen on fixes' commit messages)
    # hurts there, and whole-file BM25 helps (ticket set, dev split); long commit messages keep the prior.
    named = frozenset(parsed.identifiers)
    if parsed.report:
        return fuse(found.lists, k, False, found.files, report_weights, named, found.history)
    if parsed.ticket is not None:  # a long query: a ticket or a long commit message
        return fuse(found.lists, k, parsed.bug_report, weights=ticket_weights, named=named)
    return fuse(found.lists, k, parsed.bug_report)


def history_text(parsed: ParsedQuery) -> str:
    """The words a ticket is matched against commit messages with: all of it (title, prose, code and logs), each
    code-aware word once, at most HISTORY_MAX_WORDS."""
    return " ".join(list(dict.fromkeys(code_text(parsed.text).split()))[:HISTORY_MAX_WORDS])


def frame_hits(parsed: ParsedQuery, named: list[Hit]) -> list[Hit]:
    """The units a traceback's frames name, innermost frame first.

    A unit matches a frame when its package, receiver type and name all agree: `deps.New` for the frame
    `github.com/gohugoio/hugo/deps.New(...)`, not every package's `New`.
    """
    out: list[Hit] = []
    for frame in parsed.frames:
        package = frame.package.rsplit("/", 1)[-1]
        for hit in named:
            owner = hit.parent.rsplit(".", 1)[-1]
            unit_package, _, name = hit.symbol.partition(".")
            if (
                unit_package == package
                and name.rsplit(".", 1)[-1] == frame.function
                and owner == frame.receiver
                and hit not in out
            ):
                out.append(hit)
    return out


class Searcher:
    """Runs queries against one index with one embedder (the model is loaded once)."""

    def __init__(self, index: CodeIndex, embedder: Embedder, candidates: int = CANDIDATES) -> None:
        self.index = index
        self.embedder = embedder
        self.candidates = candidates

    def search(
        self,
        query: str | ParsedQuery,
        views: Sequence[RepoView],
        k: int = 10,
        *,
        kinds: Sequence[str] = (),
        path_prefix: str | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The top `k` units for `query` among the rows `views` make visible.

        Raises:
            ValueError: an unknown kind or an invalid repo name in `views`.
            UpstreamFailure: the index cannot be read.
        """
        if not views:
            return []
        parsed = query if isinstance(query, ParsedQuery) else parse_query(query)
        found = self.gather(parsed, views, k, kinds=kinds, path_prefix=path_prefix, mode=mode)
        if mode != "hybrid":
            return found.lists[mode][:k]
        return rank(parsed, found, k)

    def gather(
        self,
        parsed: ParsedQuery,
        views: Sequence[RepoView],
        k: int,
        *,
        kinds: Sequence[str] = (),
        path_prefix: str | None = None,
        mode: Mode = "hybrid",
    ) -> Candidates:
        """The ranked lists `search` fuses (one per `mode` outside hybrid), computed side by side."""
        where = narrow(visible(views), kinds, path_prefix)
        n = max(self.candidates, k)
        index = self.index
        jobs: dict[str, Awaitable[list[Hit] | list[tuple[str, str]] | list[tuple[str, list[str]]]]] = {}
        if mode in ("hybrid", "fts"):
            jobs["fts"] = index.fts_async(parsed.fts_text, where, n)
        if mode in ("hybrid", "vector"):
            jobs["vector"] = self._by_vector(parsed, where, n)
        messages: list[str] = []
        if mode == "hybrid":
            jobs["symbol"] = self._by_name(parsed, where, n)
            jobs["path"] = self._by_path(parsed, where, n)
            # Each error string or log message quoted in a ticket is a query of its own, merged into one list.
            messages = list(dict.fromkeys([*parsed.errors, *parsed.logs]))[:MAX_MESSAGES]
            for i, message in enumerate(messages):
                jobs[f"message:{i}"] = index.fts_async(code_text(message), where, n)
            if parsed.title_text:  # a ticket's title is its densest sentence
                jobs["title"] = index.fts_async(parsed.title_text, where, n)
            if parsed.report:
                jobs["file"] = self._by_file(parsed, narrow(visible(views), (), path_prefix))
                # the files that the past commits most like the report changed
                jobs["history"] = self.index.history_async(history_text(parsed), visible(views), HISTORY_CANDIDATES)
        # The lists are independent: they run side by side on the index's reader loop (LanceDB releases the GIL,
        # the query embedding runs on a thread of its own).
        results = index.gather(jobs)
        files = cast("list[tuple[str, str]]", results.pop("file", []))
        history = files_of_commits(cast("list[tuple[str, list[str]]]", results.pop("history", [])))
        lists = {name: cast("list[Hit]", hits) for name, hits in results.items() if not name.startswith("message:")}
        if messages:
            lists["error"] = merge([cast("list[Hit]", results[f"message:{i}"]) for i in range(len(messages))])
        if mode == "hybrid":
            lists["frame"] = frame_hits(parsed, lists["symbol"])
        return Candidates(lists, files, history)

    async def _by_vector(self, parsed: ParsedQuery, where: str, n: int) -> list[Hit]:
        (vec,) = await asyncio.to_thread(self.embedder.embed, [parsed.prose])
        return await self.index.vector_async(vec, where, n)

    async def _by_file(self, parsed: ParsedQuery, where: str) -> list[tuple[str, str]]:
        files = await self.index.file_fts_async(parsed.fts_text, where, FILE_CANDIDATES)
        return [(repo, path) for repo, path, _ in files]

    async def _by_name(self, parsed: ParsedQuery, where: str, n: int) -> list[Hit]:
        names = [i.lower() for i in parsed.identifiers if _SAFE_NAME.match(i)][:20]
        if not names:
            return []
        hits = await self.index.scan_async(f"{where} AND {any_of('name', names)}", n * 4)
        wanted_parents = {i for i in parsed.identifiers if i[:1].isupper()}
        packages = set(parsed.packages)

        def rank(hit: Hit) -> tuple[int, int, int, int]:
            owner = hit.parent.rsplit(".", 1)[-1]
            return (
                0 if owner and owner in wanted_parents else 1,
                0 if hit.symbol.split(".", 1)[0] in packages else 1,
                names.index(hit.symbol.rsplit(".", 1)[-1].lower()),
                hit.part,
            )

        return sorted(hits, key=rank)[:n]

    async def _by_path(self, parsed: ParsedQuery, where: str, n: int) -> list[Hit]:
        names = {p.rsplit("/", 1)[-1] for p in parsed.paths}
        names = {b for b in names if _SAFE_PATH.match(b)}
        if not names:
            return []
        match = " OR ".join(f"path = {quote(b)} OR ends_with(path, {quote('/' + b)})" for b in sorted(names)[:10])
        return await self.index.scan_async(f"{where} AND ({match})", n)
