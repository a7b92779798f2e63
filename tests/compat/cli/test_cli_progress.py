"""Pull/push progress rendering: status lines and one bar per layer, in order."""

from __future__ import annotations

import io

from llamaport.compat.cli.progress import show_progress
from llamaport.compat.client import ProgressLine

DIGEST = "sha256:" + "ab" * 32


def test_lines_and_bars_keep_the_server_order() -> None:
    events = [
        {"status": "pulling manifest"},
        {"status": "pulling ababababab", "digest": DIGEST, "total": 2_000_000},
        {"status": "pulling ababababab", "digest": DIGEST, "total": 2_000_000, "completed": 10},
        {"status": "pulling model.gguf", "total": 500, "completed": 100},
        {"status": "pulling model.gguf", "total": 500, "completed": 500},
        {
            "status": "pulling ababababab",
            "digest": DIGEST,
            "total": 2_000_000,
            "completed": 2_000_000,
        },
        {"status": "verifying sha256 digest"},
        {"status": "success"},
    ]
    out = io.StringIO()
    show_progress((ProgressLine.model_validate(e) for e in events), out)
    lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
    assert lines[0] == "pulling manifest"
    assert (
        lines[1].startswith("pulling ababababab:") and "100%" in lines[1] and "2.0 MB" in lines[1]
    )
    assert lines[2].startswith("pulling model.gguf:") and "500/500 bytes" in lines[2]
    assert lines[3:] == ["verifying sha256 digest", "success"]
