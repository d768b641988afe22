"""Child processes of the socket benchmarks (``bench.remote``) and where things ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench.remote import last_cpu

__all__ = ["Remote", "describe_placement", "last_cpu"]

_ROOT = str(Path(__file__).resolve().parent.parent)


class Remote:
    """``python -m bench.remote ARGS`` in its own process; ``address`` is what it printed after
    ``port``. Use as a context manager: the child is killed (by its pid) on exit."""

    def __init__(self, *args: str, cpu: int | None = None, timeout: float = 60.0) -> None:
        cmd = [sys.executable, "-m", "bench.remote", *args]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=_ROOT, env=env, text=True
        )
        self.timeout = timeout
        line = self._readline(timeout)
        if not line.startswith("port "):
            self.close()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"bench.remote {' '.join(args)} failed: {line!r} {err[-2000:]}")
        self.address = line.split(" ", 1)[1].strip()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _readline(self, timeout: float) -> str:
        out: list[str] = []
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        t = threading.Thread(target=lambda: out.append(stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not out:
            self.close()
            raise TimeoutError("bench.remote did not answer in time")
        return out[0]

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """The JSON line the child prints when it is done."""
        line = self._readline(timeout or self.timeout)
        try:
            return json.loads(line)  # type: ignore[no-any-return]
        except json.JSONDecodeError:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"bench.remote: bad result {line!r} {err[-2000:]}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for fh in (self.proc.stdout, self.proc.stderr):
            if fh is not None:
                fh.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def child_cpu(pid: int) -> int:
    """The CPU a live child process last ran on (-1 if gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return -1


def describe_placement(parts: dict[str, Any], pinned: bool) -> str:
    """One line: each process/thread, its pid, affinity and the CPU it was last seen on."""
    bits = [f"{name}: {desc}" for name, desc in parts.items()]
    return "; ".join(bits) + (
        "; pinned with --pin" if pinned else "; not pinned (the OS scheduler placed them)"
    )


def self_affinity() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def bot_desc() -> str:
    return f"pid {os.getpid()} affinity {self_affinity()} last on CPU {last_cpu()}"
