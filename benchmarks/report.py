"""``benchmarks/RESULTS.md`` and ``benchmarks/results.png`` from one bench run."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from _sections import write_section

if TYPE_CHECKING:
    from bench import Result
    from workloads import Concurrency


@dataclass(frozen=True)
class Setup:
    threads: int
    tokens: int
    ctx_per_slot: int
    llama_cpp_python: str
    cuda: bool
    started: float
    seconds: float


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def _paired(
    ours: list[Concurrency], peer: list[Concurrency], value: Callable[[Concurrency], float]
) -> str:
    """The median of the run-by-run ratios (run k of each server ran one after the
    other, so drift in the machine falls on both), with their range."""
    ratios = sorted(value(a) / value(b) for a, b in zip(ours, peer, strict=True) if value(b) > 0)
    if not ratios:
        return "n/a"
    return f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"


def _rate_rows(results: list[Result], tg: float, tokens: int) -> list[str]:
    ours, peer = results[0], results[1]
    head = "| streams | " + " | ".join(f"{r.name} tok/s (TTFT ms)" for r in results)
    head += " | llamaport / llama-server tok/s | llamaport / llama-server TTFT |"
    rows = [head, "|---:|" + "---:|" * (len(results) + 2)]
    for i, run in enumerate(ours.streams):
        cells = [f"{r.streams[i].tokens_per_second:.1f} ({r.ttfts[i] * 1000:.0f})" for r in results]
        rate = _paired(ours.levels[i], peer.levels[i], lambda c: c.tokens_per_second)
        ttft = _paired(ours.levels[i], peer.levels[i], lambda c: c.mean_ttft)
        rows.append(f"| {run.streams} | " + " | ".join(cells) + f" | {rate} | {ttft} |")
    single = ours.streams[0].tokens_per_second
    rows.append("")
    rows.append(
        f"llama-bench tg{tokens} (median of three, taking turns with the single streams): "
        f"{tg:.1f} tok/s; "
        f"llamaport 1 stream / llama-bench: {_ratio(single, tg)} (llama-bench counts decode "
        "only; the servers' rates include prefill and HTTP)."
    )
    return rows


def _conversation_rows(results: list[Result]) -> list[str]:
    rows = [
        "| server | conversations on slots | cold TTFT s | next-turn TTFT s | next / cold "
        "| cached (next turns) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        for c in r.conversations:
            share = c.cached_share
            cached = f"{share:.0%}" if share is not None else "not reported"
            after = ", next turns after `serve` restarts" if c.restarted else ""
            rows.append(
                f"| {r.name} | {c.conversations} on {c.slots}{after} | {c.cold_ttft:.2f} "
                f"| {c.warm_ttft:.2f} | {_ratio(c.warm_ttft, c.cold_ttft)} | {cached} |"
            )
    return rows


def _start_rows(results: list[Result]) -> list[str]:
    rows = [
        "| server | ready s | ready + first token s | RSS with the model loaded MB |",
        "|---|---:|---:|---:|",
    ]
    rows += [
        f"| {r.name} | {r.ready:.2f} | {r.first_token:.2f} | {r.rss_mb:.0f} |" for r in results
    ]
    rows.append("")
    rows.append(
        "Each server is told its model at start: the peers with `-m`, llamaport with "
        "`LLAMAPORT_PRELOAD` (its spare engine process loads it while the server imports). "
        "llamaport's home has the embedded model already (a home's first start hashes its "
        "GGUF once) and its modules are compiled, as a wheel install leaves them."
    )
    for r in results:
        if r.loading_first is not None:
            ready, first = r.loading_first
            rows.append(
                f"Without `LLAMAPORT_PRELOAD`, llamaport loads the model in the first request, "
                f"as Ollama does: ready {ready:.2f} s, ready + first token {first:.2f} s."
            )
    return rows


def _markdown(setup: Setup, results: list[Result], tg: float) -> str:
    when = datetime.fromtimestamp(setup.started, UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    lines = [
        f"Written by `make bench` (`benchmarks/bench.py`) on {when}, in {setup.seconds:.0f} s.",
        f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), Python "
        f"{platform.python_version()}, load average {load:.1f} at the end of the run.",
        f"Model `smollm2:135m` (SmolLM2-135M-Instruct Q4_1), {setup.threads} threads, "
        f"{setup.ctx_per_slot} tokens of KV per slot, 8 slots (4 for 16 conversations); "
        f"every server loads one llama.cpp build from the llama-cpp-python "
        f"{setup.llama_cpp_python} sdist (cmake, `GGML_NATIVE=OFF`, "
        f"{'CUDA' if setup.cuda else 'CPU only'}). llama-server runs `-np 8 -c 16384`; "
        "llama_cpp.server runs its defaults with `--interrupt_requests False` (one sequence).",
        f"Streams: streamed `/v1/chat/completions`, {setup.tokens} tokens, temperature 0.7, "
        "a seed each, every client made before the clock starts; tokens are content deltas "
        "counted by the client. After one warm-up round at the highest concurrency, each "
        "level runs three times, the servers taking turns run by run (llama-bench beside "
        "the single streams): tokens/s is the median run's, TTFT the median over the runs "
        "of a run's mean time to the first content delta. Each llamaport / llama-server "
        "ratio is the median of the three run-by-run ratios (run k of one server ran just "
        "before or after run k of the other), their range in brackets: a range that "
        "spans 1.00x is within this machine's noise.",
        "",
        "Other work may load the machine during a run: compare servers by the ratios "
        "within this run, not absolute rates across runs.",
        "",
        "## Throughput",
        "",
        *_rate_rows(results, tg, setup.tokens),
        "",
        "![aggregate tok/s and TTFT against concurrency](results.png)",
        "",
        "## Conversations taking turns (~900 tokens of history, 16-token replies)",
        "",
        *_conversation_rows(results),
        "",
        "## Start and memory",
        "",
        *_start_rows(results),
        "",
    ]
    embedding = [r for r in results if r.embed is not None]
    if embedding:
        lines += [
            "## Embeddings (`/v1/embeddings`, 64 short inputs)",
            "",
            "| server | one request of 64, inputs/s | 64 single requests, inputs/s | ratio |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r.name} | {r.embed[0]:.1f} | {r.embed[1]:.1f} | {_ratio(*r.embed)} |"
            for r in embedding
            if r.embed is not None
        ]
        lines.append("")
    lines += [
        "## GPU",
        "",
        "GPU figures are unmeasured: no GPU machine was available for this run. "
        "`benchmarks/gpu.sh` builds everything with `-DGGML_CUDA=on` and runs this "
        "comparison; paste what it prints here.",
        "",
    ]
    return "\n".join(lines)


def _plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate, ttft) = plt.subplots(1, 2, figsize=(10, 4))
    for r in results:
        x = [s.streams for s in r.streams]
        rate.plot(x, [s.tokens_per_second for s in r.streams], marker="o", label=r.name)
        ttft.plot(x, r.ttfts, marker="o", label=r.name)
    for ax, title in ((rate, "aggregate tokens/s"), (ttft, "mean time to first token (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent streams")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    rate.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(out: Path, setup: Setup, results: list[Result], tg: float) -> None:
    """The comparison goes in its own section of RESULTS.md; other benchmarks' stay."""
    print(write_section("bench", _markdown(setup, results, tg)))
    _plot(results, out / "results.png")
