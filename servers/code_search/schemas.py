"""What the code-search tools return (pydantic models; their JSON Schemas are the tool output schemas)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from servers.code_search.model import Hit


class CodeUnit(BaseModel):
    """One unit of code: where it is, what it is, and its text (whole lines)."""

    repo: str
    path: str
    start_line: int
    end_line: int
    symbol: str = Field(description="Qualified symbol: pkg.Func, pkg.Type.Method, or a Markdown heading path.")
    kind: str = Field(description="func, method, type, const, var, package, doc or window.")
    score: float
    tokens: int = Field(description="Approximate token cost of `code`.")
    code: str

    @classmethod
    def of(cls, hit: Hit) -> CodeUnit:
        return cls(
            repo=hit.repo,
            path=hit.path,
            start_line=hit.start_line,
            end_line=hit.end_line,
            symbol=hit.symbol,
            kind=hit.kind,
            score=hit.score,
            tokens=hit.tokens,
            code=hit.content,
        )


class SearchResult(BaseModel):
    units: list[CodeUnit] = Field(description="Best first; whole units that fit the token budget.")
    tokens: int = Field(description="Sum of the units' token costs.")
    omitted: int = Field(description="Ranked units left out because they did not fit the budget.")


class MethodSignature(BaseModel):
    symbol: str
    signature: str
    path: str
    start_line: int


class SymbolResult(BaseModel):
    units: list[CodeUnit] = Field(description="The declaration (several parts if it was split; several if ambiguous).")
    methods: list[MethodSignature] = Field(description="For a type: the signatures of its methods.")


class FileSlice(BaseModel):
    repo: str
    path: str
    commit: str
    start_line: int
    end_line: int
    total_lines: int
    text: str


class RepoEntry(BaseModel):
    name: str
    commit: str
    indexed_at: str


class RepoList(BaseModel):
    repos: list[RepoEntry]
