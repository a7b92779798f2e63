"""The peers the benchmark measures llamaport against, built outside the repository.

``llama-server`` and ``llama-bench`` are compiled with cmake from the llama.cpp
sources vendored in the llama-cpp-python sdist of the installed version (so
all three servers run the same llama.cpp), CPU only, ``nice -n 19`` and two
jobs, into a cache directory (``~/.cache/llamaport-bench`` by default). The
same build's shared libraries are what every server loads (through
``LLAMA_CPP_LIB_PATH``), and ``llama-cpp-python[server]`` goes into a venv of
its own there for ``python -m llama_cpp.server``. Nothing built here is ever
committed. Each step is skipped when its output exists.

``python benchmarks/peers.py [--cache DIR] [--cuda]`` only builds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "llamaport-bench"


@dataclass(frozen=True)
class Peers:
    """Where the built peers live."""

    root: Path
    version: str
    cuda: bool

    @property
    def build(self) -> Path:
        return self.root / ("build-cuda" if self.cuda else "build-cpu")

    @property
    def lib_path(self) -> Path:
        """The shared libraries every server loads (``LLAMA_CPP_LIB_PATH``)."""
        return self.build / "bin"

    @property
    def llama_server(self) -> Path:
        return self.build / "bin" / "llama-server"

    @property
    def llama_bench(self) -> Path:
        return self.build / "bin" / "llama-bench"

    @property
    def venv_python(self) -> Path:
        return self.root / "venv-llama-cpp-server" / "bin" / "python"


def _run(command: list[str], cwd: Path | None = None) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=cwd, check=True)


def _sources(root: Path, ver: str) -> Path:
    """The sdist's ``vendor/llama.cpp``, downloaded and unpacked once."""
    unpacked = root / f"llama_cpp_python-{ver}"
    if not unpacked.is_dir():
        sdist = root / "sdist"
        pip = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        _run([*pip, f"llama-cpp-python=={ver}", "-d", str(sdist)])
        with tarfile.open(sdist / f"llama_cpp_python-{ver}.tar.gz") as tar:
            tar.extractall(root, filter="data")
    return unpacked / "vendor" / "llama.cpp"


def _compile(peers: Peers) -> None:
    if peers.llama_server.exists() and peers.llama_bench.exists():
        return
    src = _sources(peers.root, peers.version)
    flags = [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=ON",
        "-DGGML_NATIVE=OFF",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_TOOLS=ON",
        "-DLLAMA_BUILD_SERVER=ON",
        f"-DGGML_CUDA={'ON' if peers.cuda else 'OFF'}",
    ]
    _run(["cmake", "-S", str(src), "-B", str(peers.build), *flags])
    targets = ["llama-server", "llama-bench", "llama"]
    build = ["cmake", "--build", str(peers.build), "--target", *targets, "-j", "2"]
    _run(["nice", "-n", "19", *build])


def _venv(peers: Peers) -> None:
    if peers.venv_python.exists():
        return
    _run([sys.executable, "-m", "venv", str(peers.venv_python.parent.parent)])
    pip = [str(peers.venv_python), "-m", "pip", "install", "--quiet"]
    _run([*pip, f"llama-cpp-python[server]=={peers.version}"])


def prepare(root: Path = DEFAULT_CACHE, cuda: bool = False) -> Peers:
    """Build (or find) the peers for the installed llama-cpp-python."""
    root.mkdir(parents=True, exist_ok=True)
    peers = Peers(root=root, version=version("llama-cpp-python"), cuda=cuda)
    _compile(peers)
    _venv(peers)
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--cuda", action="store_true", help="build with -DGGML_CUDA=on")
    args = parser.parse_args()
    peers = prepare(args.cache, args.cuda)
    print(peers.llama_server, peers.llama_bench, peers.venv_python, sep="\n")


if __name__ == "__main__":
    main()
