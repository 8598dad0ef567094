"""What the benchmarks measure besides time: peak memory of the process tree, and the machine."""
from __future__ import annotations

import json
import os
import platform
import threading
from pathlib import Path


class PeakMemory:
    """Peak resident memory of this process and all its children (the Spark JVM and Spark's Python
    workers), sampled; also per period (`take`), with the Python workers' share apart."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._period_peak, self._period_workers = 0, 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> tuple[int, int]:
        """(RSS of the whole tree, RSS of its Python processes other than this one). Process ids wrap
        around, so a child can have a lower id than its parent: the tree is walked from the parents."""
        children: dict[int, list[int]] = {}
        info: dict[int, tuple[str, int]] = {}
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            except OSError:
                continue
            pid = int(status.parent.name)
            rss = int(fields["VmRSS"].split()[0]) * 1024 if "VmRSS" in fields else 0
            info[pid] = (fields.get("Name", "").strip(), rss)
            children.setdefault(int(fields.get("PPid", "0").strip()), []).append(pid)
        me = os.getpid()
        total = workers = 0
        stack = [me]
        while stack:
            pid = stack.pop()
            name, rss = info.get(pid, ("", 0))
            total += rss
            workers += rss if pid != me and name.startswith("python") else 0
            stack.extend(children.get(pid, []))
        return total, workers

    def take(self) -> tuple[int, int]:
        """(peak of the tree, peak of the Python workers) since the last take, and start a new period."""
        taken = self._period_peak, self._period_workers
        self._period_peak, self._period_workers = 0, 0
        return taken

    def _run(self):
        while not self._stop.is_set():
            total, workers = self._tree_rss()
            self.peak = max(self.peak, total)
            self._period_peak, self._period_workers = max(self._period_peak, total), max(self._period_workers, workers)
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
