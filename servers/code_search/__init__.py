"""code-search: AST-aware, access-controlled, incremental hybrid search over Go repositories.

chunker/markdown   source -> units (tree-sitter-go; headings; line windows)
source/gitrepo     which files, at which commit
embed/minilm/...   embedders behind one Protocol
index              LanceDB (generations, prefilter, FTS + vectors)
indexer            incremental indexing, one writer per repo
query/search       query understanding, hybrid fusion, token-budget packing
service/server     the MCP tools; cli: `goresolve index` / `goresolve search`
"""
