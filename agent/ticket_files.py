"""A ticket file given on the command line, served by jira-read's local backend on its own.

jira-read's local backend reads every `.yaml`/`.yml`/`.json` file in its folder and refuses to start
when one is not a ticket. A ticket file saved beside other YAML (a repository's `.golangci.yml`, a
`docker-compose.yml`) would stop it, so the backend is pointed at a private folder holding a copy of
that one file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def single_ticket_dir(path: Path) -> Generator[Path]:
    """A private folder holding only a copy of the ticket file `path`, removed on exit.

    Raises:
        OSError: `path` cannot be read.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-ticket-") as tmp:
        shutil.copyfile(path, Path(tmp) / path.name)
        yield Path(tmp)
