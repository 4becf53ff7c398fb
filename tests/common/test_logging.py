"""Log lines: JSON for servers, readable lines for the CLI, on stderr; library chatter below WARNING dropped."""

from __future__ import annotations

import io
import json
import logging

from servers.common.logging import configure_logging, get_logger


def test_root_logger_info_from_libraries_is_dropped_ours_is_kept() -> None:
    out = io.StringIO()
    configure_logging(service="t", level="INFO", stream=out)
    logging.info("Quantization parameters for tensor not specified")  # a library on the root logger
    logging.warning("a library warning")
    logging.getLogger("persistqueue").info("Async queues not available, may need to install aiofiles")
    logging.getLogger("persistqueue.serializers.pickle").info("Selected pickle protocol: '4'")
    logging.getLogger("persistqueue.sqlbase").warning("a persist-queue warning")
    logging.getLogger("persistqueuex").info("another library entirely")
    get_logger("servers.x").info("model ready")
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["a library warning", "a persist-queue warning", "another library entirely", "model ready"]


def test_the_cli_gets_one_readable_line_per_event() -> None:
    out = io.StringIO()
    configure_logging(service="goresolve", level="INFO", stream=out, console=True)
    get_logger("servers.x").warning("embedding model not installed; installing it now", into="/d")
    (line,) = out.getvalue().splitlines()
    assert "embedding model not installed; installing it now" in line and "into=/d" in line
    assert not line.startswith("{")
