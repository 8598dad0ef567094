"""What the benchmarks measure besides time: peak memory of the process tree, and the machine."""
from __future__ import annotations

import json
import os
import platform
import threading
from pathlib import Path


class PeakMemory:
    """Peak resident memory of this process and all its children (the Spark JVM), sampled."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> int:
        pids, total = {os.getpid()}, 0
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            except OSError:
                continue
            if int(fields.get("PPid", "0").strip()) in pids or int(status.parent.name) in pids:
                pids.add(int(status.parent.name))
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) // (1024 * 1024)
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB, Python {platform.python_version()}"


RESULTS = Path(__file__).resolve().parent / "results.jsonl"


def record(benchmark: str, result: dict) -> None:
    """Print a result and append it to benchmarks/results.jsonl (the history docs/benchmarks.md cites)."""
    print(json.dumps(result))
    with RESULTS.open("a") as out:
        out.write(json.dumps({"benchmark": benchmark, **result}) + "\n")
