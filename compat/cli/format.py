"""Pure text formatters that make the CLI's output byte-identical to Ollama's.

Nothing here does I/O or reads the clock: callers pass ``now`` so tables can
be tested with fixed times. The rules (thresholds, rounding, padding) follow
Ollama's ``format`` package and the ``tablewriter`` settings its ``list``,
``ps`` and ``show`` commands use; see docs in each function.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from llamaport.compat.client import Metrics, ModelEntry, RunningModel, ShowResponse
from llamaport.storage.params import go_float, go_value

__all__ = [
    "TABLE_PADDING",
    "go_duration",
    "go_quote",
    "go_value",
    "human_bytes",
    "human_number",
    "human_time",
    "list_table",
    "parse_timestamp",
    "processor",
    "ps_table",
    "render_table",
    "show_info",
    "timing_summary",
    "upstreams_table",
    "wrap_cell",
]

TABLE_PADDING = "    "
"""Gap after every cell (Ollama: ``SetTablePadding("    ")``)."""

_NS_PER_SECOND = 1_000_000_000
_NS_PER_HOUR = 3600 * _NS_PER_SECOND


# -- numbers and sizes -------------------------------------------------------


def human_bytes(size: int) -> str:
    """Decimal (1000-based) size, as ``ollama list`` prints it.

    Whole values and values of 10 or more print as integers (truncated),
    smaller fractional values with one decimal: ``999 B``, ``1 KB``,
    ``1.5 KB``, ``2.0 TB`` for 1999999999999, ``999 GB``.
    """
    units = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3))
    for unit, scale in units:
        if size >= scale:
            value = size / scale
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def human_number(count: int) -> str:
    """Parameter counts like ``8B``, ``2.8B``, ``137M``, ``22.57M``, ``5K``."""
    if count >= 10**9:
        value = count / 10**9
        return f"{value:.0f}B" if value == math.floor(value) else f"{value:.1f}B"
    if count >= 10**6:
        value = count / 10**6
        return f"{value:.0f}M" if value == math.floor(value) else f"{value:.2f}M"
    if count >= 10**3:
        return f"{count / 10**3:.0f}K"
    return str(count)


# -- time --------------------------------------------------------------------


def _go_round(value: float) -> int:
    """Go's ``math.Round``: halves round away from zero (Python rounds to even)."""
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)


def _trunc_div(a: int, b: int) -> int:
    """Go integer division, which truncates toward zero."""
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _delta_ns(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * _NS_PER_SECOND + delta.microseconds * 1000


def _human_duration(ns: int) -> str:
    """Approximate a positive duration: ``4 hours``, ``About a minute``."""
    seconds = ns // _NS_PER_SECOND
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = _go_round(ns / _NS_PER_HOUR)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{ns // _NS_PER_HOUR // 24 // 365} years"


def human_time(when: datetime | None, now: datetime, zero: str = "Never") -> str:
    """``2 weeks ago`` / ``4 minutes from now`` / ``Forever``; ``zero`` for no time."""
    if when is None:
        return zero
    delta = _delta_ns(now - when)
    if _trunc_div(_trunc_div(_trunc_div(delta, _NS_PER_HOUR), 24), 365) < -20:
        return "Forever"
    if delta < 0:
        return _human_duration(-delta) + " from now"
    return _human_duration(delta) + " ago"


def parse_timestamp(text: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp with up to nanosecond precision.

    Returns ``None`` for a missing value or Go's zero time
    (``0001-01-01T00:00:00Z``), which Ollama prints as ``Never``.
    """
    if not text:
        return None
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    head, dot, rest = value.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year <= 1:
        return None
    return parsed


def _fraction(value: int, digits: int) -> str:
    """``value`` scaled down by ``10**digits``, trailing zeros dropped."""
    whole, frac = divmod(value, 10**digits)
    tail = str(frac).rjust(digits, "0").rstrip("0")
    return f"{whole}.{tail}" if tail else str(whole)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String``: ``1.234s``, ``12ms``, ``1m3.5s``, ``2h0m0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 3)}µs"
    if u < _NS_PER_SECOND:
        return f"{sign}{_fraction(u, 6)}ms"
    hours, rest = divmod(u, _NS_PER_HOUR)
    minutes, rest = divmod(rest, 60 * _NS_PER_SECOND)
    secs = _fraction(rest, 9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}"
    if minutes:
        return f"{sign}{minutes}m{secs}"
    return f"{sign}{secs}"


# -- Go value rendering ------------------------------------------------------


def go_quote(text: str) -> str:
    """Go's ``%q`` for ordinary text: a double-quoted, backslash-escaped string."""
    return json.dumps(text, ensure_ascii=False)


# -- tables ------------------------------------------------------------------


def _width(text: str) -> int:
    """Terminal columns taken by ``text`` (wide East Asian glyphs count 2)."""
    total = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def wrap_cell(text: str, limit: int) -> list[str]:
    """Break a cell into lines of at most ``limit`` columns, least ragged first.

    Mirrors tablewriter's auto-wrap: newlines become spaces, a word longer
    than the limit raises the limit, and breaks minimise the summed squared
    slack of every line but the last.
    """
    words = text.replace("\n", " ").split(" ")
    limit = max([limit, *(_width(word) for word in words)])
    count = len(words)
    widths = [_width(word) for word in words]
    cost = [0] * (count + 1)
    breaks = [count] * (count + 1)
    for start in range(count - 1, -1, -1):
        length = sum(widths[start:]) + (count - start - 1)
        if length <= limit:
            cost[start], breaks[start] = 0, count
            continue
        best = math.inf
        length = -1
        for end in range(start + 1, count):
            length += widths[end - 1] + 1
            slack = limit - length
            candidate = slack * slack + cost[end] + (100_000 if length > limit else 0)
            if candidate < best:
                best, breaks[start] = candidate, end
        cost[start] = int(best)
    lines, start = [], 0
    while start < count:
        lines.append(" ".join(words[start : breaks[start]]))
        start = breaks[start]
    return lines


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def render_table(
    header: Sequence[str] | None, rows: Sequence[Sequence[str]], max_width: int = 30
) -> str:
    """Render rows the way Ollama's borderless tablewriter does.

    Every cell is left-aligned, padded to its column's widest cell and
    followed by four spaces, the last column included; only the header's last
    cell is followed by a single space. Cells wider than ``max_width`` are
    word-wrapped onto extra lines.
    """
    header_cells = [wrap_cell(cell, max_width) for cell in header or ()]
    body = [[wrap_cell(cell, max_width) for cell in row] for row in rows]
    widths: dict[int, int] = {}
    for row in [header_cells, *body]:
        for index, lines in enumerate(row):
            widths[index] = max(widths.get(index, 0), *(_width(line) for line in lines))
    out: list[str] = []
    if header_cells:
        last = len(widths) - 1
        out.append(
            "".join(
                _pad(header_cells[i][0] if i < len(header_cells) else "", widths[i])
                + (" " if i == last else TABLE_PADDING)
                for i in range(last + 1)
            )
            + "\n"
        )
    for row in body:
        height = max((len(lines) for lines in row), default=0)
        for line_no in range(height):
            cells = [lines[line_no] if line_no < len(lines) else "  " for lines in row]
            out.append("".join(_pad(c, widths[i]) + TABLE_PADDING for i, c in enumerate(cells)))
            out.append("\n")
    return "".join(out)


def processor(size: int, size_vram: int) -> str:
    """Where a loaded model lives: ``100% GPU``, ``100% CPU`` or a split."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = _go_round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def list_table(models: Sequence[ModelEntry], now: datetime, prefix: str = "") -> str:
    """``ollama list``: NAME, ID, SIZE, MODIFIED; prefix match ignores case."""
    rows = []
    for model in models:
        if prefix and not model.name.lower().startswith(prefix.lower()):
            continue
        size = "-" if model.remote_model else human_bytes(model.size)
        modified = human_time(parse_timestamp(model.modified_at), now, "Never")
        rows.append([model.name, model.digest[:12], size, modified])
    return render_table(["NAME", "ID", "SIZE", "MODIFIED"], rows)


def upstreams_table(upstreams: Sequence[Mapping[str, Any]]) -> str:
    """``llamaport upstreams``: NAME, KIND, STATE, OUTSTANDING, REQUESTS (how many
    ended each way, as ``ok=12 unavailable=1``), LAST ERROR."""
    rows = [
        [
            str(up.get("name", "")),
            str(up.get("kind", "")),
            str(up.get("state", "")),
            str(int(up.get("outstanding", 0))),
            " ".join(f"{k}={v}" for k, v in sorted((up.get("requests") or {}).items())) or "-",
            str(up.get("last_error") or "-"),
        ]
        for up in upstreams
    ]
    head = ["NAME", "KIND", "STATE", "OUTSTANDING", "REQUESTS", "LAST ERROR"]
    return render_table(head, rows)


def ps_table(models: Sequence[RunningModel], now: datetime, prefix: str = "") -> str:
    """``ollama ps``: NAME, ID, SIZE, PROCESSOR, CONTEXT, UNTIL; prefix match is exact."""
    rows = []
    for model in models:
        if prefix and not model.name.startswith(prefix):
            continue
        expires = parse_timestamp(model.expires_at)
        if expires is None or expires < now:
            until = "Stopping..."
        else:
            until = human_time(expires, now, "Never")
        rows.append(
            [
                model.name,
                model.digest[:12],
                human_bytes(model.size),
                processor(model.size, model.size_vram),
                str(model.context_length),
                until,
            ]
        )
    return render_table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], rows)


# -- timings -----------------------------------------------------------------


def timing_summary(metrics: Metrics) -> str:
    """The ``--verbose`` block Ollama prints after a reply (without colour)."""
    lines = []
    total = metrics.total_duration or 0
    load = metrics.load_duration or 0
    prompt_count = metrics.prompt_eval_count or 0
    prompt_ns = metrics.prompt_eval_duration or 0
    eval_count = metrics.eval_count or 0
    eval_ns = metrics.eval_duration or 0
    if total > 0:
        lines.append(f"total duration:       {go_duration(total)}")
    if load > 0:
        lines.append(f"load duration:        {go_duration(load)}")
    if prompt_count > 0:
        lines.append(f"prompt eval count:    {prompt_count} token(s)")
    if prompt_ns > 0:
        lines.append(f"prompt eval duration: {go_duration(prompt_ns)}")
        lines.append(f"prompt eval rate:     {prompt_count / (prompt_ns / 1e9):.2f} tokens/s")
    if eval_count > 0:
        lines.append(f"eval count:           {eval_count} token(s)")
    if eval_ns > 0:
        lines.append(f"eval duration:        {go_duration(eval_ns)}")
        lines.append(f"eval rate:            {eval_count / (eval_ns / 1e9):.2f} tokens/s")
    return "".join(line + "\n" for line in lines)


# -- show --------------------------------------------------------------------


def _go_number(value: Any) -> str | None:
    """Go's ``FormatFloat(v, 'f', -1, 64)`` for a JSON number, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    text = repr(value)
    return text if "e" not in text else f"{value:.20f}".rstrip("0")


def _model_rows(resp: ShowResponse) -> list[list[str]]:
    details = resp.details
    info = resp.model_info
    rows: list[list[str]] = []
    if resp.remote_host:
        rows.append(["", "Remote model", resp.remote_model or ""])
        rows.append(["", "Remote URL", resp.remote_host])
    if info is not None:
        arch = info.get("general.architecture")
        arch = arch if isinstance(arch, str) else ""
        if arch:
            rows.append(["", "architecture", arch])
        params = details.parameter_size
        count = _go_number(info.get("general.parameter_count"))
        if not params and count is not None:
            params = human_number(int(float(count)))
        if params:
            rows.append(["", "parameters", params])
        for key, label in (
            ("context_length", "context length"),
            ("embedding_length", "embedding length"),
        ):
            number = _go_number(info.get(f"{arch}.{key}"))
            if number is not None:
                rows.append(["", label, number])
    else:
        rows.append(["", "architecture", details.family])
        rows.append(["", "parameters", details.parameter_size])
    rows.append(["", "quantization", details.quantization_level])
    if resp.requires:
        rows.append(["", "requires", resp.requires])
    return rows


def _projector_rows(projector: Mapping[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    arch = projector.get("general.architecture")
    arch = arch if isinstance(arch, str) else ""
    if arch:
        rows.append(["", "architecture", arch])
    count = _go_number(projector.get("general.parameter_count"))
    if count is not None:
        rows.append(["", "parameters", human_number(int(float(count)))])
    for suffix, label in (
        ("embedding_length", "embedding length"),
        ("projection_dim", "dimensions"),
    ):
        for modality in ("vision", "audio"):
            number = _go_number(projector.get(f"{arch}.{modality}.{suffix}"))
            if number is not None:
                rows.append(["", label, number])
                break
    return rows


def _head(text: str, count: int) -> list[list[str]]:
    """The first ``count`` non-blank lines, then ``...`` if there were more."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [["", line] for line in lines[:count]]
    if len(lines) > count:
        rows.append(["", "..."])
    return rows


def _section(title: str, rows: Sequence[Sequence[str]], max_width: int = 30) -> str:
    return f"  {title}\n" + render_table(None, rows, max_width) + "\n"


def _metadata_value(value: Any) -> str:
    """One ``show -v`` Metadata cell: Go's rendering of a decoded JSON value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return go_float(float(value))
    if isinstance(value, list):
        items = [_metadata_value(item) for item in value]
        shown, width = 0, 1
        for index, item in enumerate(items):
            cost = _width(item) + (2 if index else 0)
            if width + cost > _METADATA_WIDTH and index:
                break
            width += cost
            shown += 1
        if shown < len(items):
            return "[" + " ".join(items[:shown]) + f" ...+{len(items) - shown} more]"
        return "[" + " ".join(items) + "]"
    return "<nil>" if value is None else "map[string]interface {}"


_METADATA_WIDTH = 10
"""Ollama's budget for an array's preview in the Metadata table."""


def show_info(resp: ShowResponse, verbose: bool = False) -> str:
    """``ollama show MODEL``: Model, Capabilities, Projector, Parameters, then with
    ``verbose`` Metadata and Tensors, then System and License."""
    out = [_section("Model", _model_rows(resp))]
    if resp.capabilities:
        out.append(_section("Capabilities", [["", c] for c in resp.capabilities]))
    if resp.projector_info:
        out.append(_section("Projector", _projector_rows(resp.projector_info)))
    if resp.parameters:
        rows = [["", *line.split()] for line in resp.parameters.splitlines() if line]
        out.append(_section("Parameters", rows))
    info = resp.model_info
    if info is not None and verbose:
        rows = [["", key, _metadata_value(info[key])] for key in sorted(info)]
        out.append(_section("Metadata", rows))
    tensors = resp.tensors or []
    if tensors and verbose:
        rows = [
            ["", str(t.get("name")), str(t.get("type")), go_value(list(t.get("shape") or []))]
            for t in tensors
        ]
        out.append(_section("Tensors", rows))
    if resp.system:
        out.append(_section("System", _head(resp.system, 2), max_width=100))
    if resp.license:
        out.append(_section("License", _head(resp.license, 2), max_width=100))
    return "".join(out)
