"""The side-by-side benchmark: ``openai-ws bench`` (or ``python benchmarks/run.py``).

Every competitor talks to the same emulator, which runs in a process of its own. Every figure
is the median of repeated runs, with the min and max; ratios are computed run by run (the
competitors take turns within each repeat) and then summarised the same way. See
docs/topics/performance.rst for the method and the last published results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from .competitors import API_KEY, Urls, loop_competitors, throughput_competitors

__all__ = ["main"]


@attrs.frozen
class Plan:
    words: int
    repeats: int
    loop_turns: int
    loop_repeats: int
    levels: tuple[int, ...]
    concurrency_turns: int
    cold_repeats: int


PLANS = {
    "full": Plan(20_000, 7, 30, 3, (1, 16, 64, 256), 5, 15),
    "quick": Plan(20_000, 3, 30, 1, (1, 16, 64, 256), 5, 5),
    "smoke": Plan(300, 1, 3, 1, (1, 4), 2, 2),
}


class Emulator:
    """The emulator in a child process."""

    def __init__(self, latency: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "openai_ws._bench.server", "--latency", latency],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process did not start")
        urls = json.loads(line)
        self.urls = Urls(urls["ws_url"], urls["http_base_url"], API_KEY)

    def stats(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        result: dict[str, Any] = json.loads(self.process.stdout.readline())
        return result

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _versions() -> dict[str, str]:
    out = {}
    for name in ("openai-ws", "websocket-client", "websockets", "requests", "openai", "httpx"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": _versions(),
    }


# -- scenarios ----------------------------------------------------------------------------------


def throughput(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    with Emulator("instant") as emulator:
        competitors = throughput_competitors(emulator.urls)
        results: dict[str, dict[str, list[float]]] = {
            c.name: {"events_per_s": [], "cpu_per_1k": [], "events": []} for c in competitors
        }
        for competitor in competitors:
            competitor.setup()
            competitor.stream(min(plan.words, 500))  # warm: imports, caches, the first connection
        try:
            for repeat in range(plan.repeats):
                for competitor in competitors:
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    events = competitor.stream(plan.words)
                    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                    entry = results[competitor.name]
                    entry["events_per_s"].append(events / wall)
                    entry["cpu_per_1k"].append(cpu / events * 1000)
                    entry["events"].append(events)
                log(f"  throughput: repeat {repeat + 1}/{plan.repeats} done")
        finally:
            for competitor in competitors:
                competitor.close()
    return {"words": plan.words, "repeats": plan.repeats, "results": results}


def agent_loops(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    with Emulator("default") as emulator:
        competitors = loop_competitors(emulator.urls)
        results: dict[str, dict[str, list[float]]] = {}
        for repeat in range(plan.loop_repeats):
            for competitor in competitors:
                before = emulator.stats()
                competitor.setup()
                wall0 = time.perf_counter()
                outcome = competitor.agent_loop(plan.loop_turns)
                wall = time.perf_counter() - wall0
                competitor.close()
                after = emulator.stats()
                entry = results.setdefault(
                    competitor.name,
                    {
                        "seconds": [],
                        "first_token": [],
                        "bytes_uploaded": [],
                        "requests": [],
                        "connections": [],
                        "turns": [],
                    },
                )
                entry["seconds"].append(wall)
                entry["first_token"].append(statistics.median(outcome.first_token))
                entry["bytes_uploaded"].append(after["bytes_in"] - before["bytes_in"])
                entry["requests"].append(after["requests"] - before["requests"])
                entry["connections"].append(after["connections"] - before["connections"])
                entry["turns"].append(outcome.turns)
            log(f"  agent loop: repeat {repeat + 1}/{plan.loop_repeats} done")
    return {
        "tool_turns": plan.loop_turns,
        "repeats": plan.loop_repeats,
        "latency": "default",
        "results": results,
    }


def concurrency(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    levels = []
    with Emulator("default") as emulator:
        urls = json.dumps(attrs.asdict(emulator.urls))
        for sessions in plan.levels:
            output = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "openai_ws._bench.concurrency",
                    urls,
                    str(sessions),
                    str(plan.concurrency_turns),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            ).stdout
            levels.append(json.loads(output.strip().splitlines()[-1]))
            log(f"  concurrency: {sessions} sessions done")
    return {"turns_per_session": plan.concurrency_turns, "levels": levels}


INSTRUCTIONS = "You are a careful assistant. " + " ".join(
    f"Rule {n}: be precise about item {n}." for n in range(700)
)


def cold_warm(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    from ..transports import WebSocketConnection
    from .competitors import TOOL

    def first_event(
        connection: WebSocketConnection, body: dict[str, Any]
    ) -> tuple[float, str | None]:
        started = time.perf_counter()
        stream = connection.create(body)
        next(stream)
        elapsed = time.perf_counter() - started
        last = None
        for event in stream:
            last = event
        response_id = (
            last.raw["response"]["id"] if last is not None and "response" in last.raw else None
        )
        return elapsed, response_id

    base = {"model": "m", "instructions": INSTRUCTIONS, "tools": [TOOL], "store": False}
    results: dict[str, list[float]] = {
        "new connection": [],
        "after warm_up": [],
        "reused connection": [],
    }
    with Emulator("default") as emulator:
        urls = emulator.urls
        for _ in range(plan.cold_repeats):
            with WebSocketConnection(urls.ws_url, api_key=urls.api_key) as connection:
                seconds, response_id = first_event(connection, {**base, "input": "hello"})
                results["new connection"].append(seconds)
                seconds, _ = first_event(
                    connection,
                    {
                        **base,
                        "input": [{"role": "user", "content": "again"}],
                        "previous_response_id": response_id,
                    },
                )
                results["reused connection"].append(seconds)
            with WebSocketConnection(urls.ws_url, api_key=urls.api_key) as connection:
                warm_id = connection.warm_up(
                    "m", tools=[TOOL], instructions=INSTRUCTIONS, store=False
                )
                seconds, _ = first_event(
                    connection, {**base, "input": "hello", "previous_response_id": warm_id}
                )
                results["after warm_up"].append(seconds)
        log("  cold/warm done")
    return {
        "repeats": plan.cold_repeats,
        "instructions_chars": len(INSTRUCTIONS),
        "results": results,
    }


# -- the report ---------------------------------------------------------------------------------


def _ratio(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    return summary([n / d for n, d in zip(numerators, denominators, strict=True)])


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of the benchmark issue, each met or not, with the measured ratio."""
    targets = []
    tp = report.get("throughput", {}).get("results", {})
    ours = tp.get("openai-ws Client.stream (websocket)", {}).get("events_per_s")

    def add(name: str, ratio: dict[str, float] | None, goal: float, higher: bool = True) -> None:
        if ratio is None:
            targets.append({"target": name, "goal": goal, "ratio": None, "met": None})
            return
        met = ratio["median"] >= goal if higher else ratio["median"] <= goal
        targets.append({"target": name, "goal": goal, "ratio": ratio, "met": met})

    def versus(other: str) -> dict[str, float] | None:
        theirs = tp.get(other, {}).get("events_per_s")
        return _ratio(ours, theirs) if ours and theirs else None

    add(
        "Client.stream(websocket) events/s vs the raw websocket-client floor",
        versus("raw websocket-client"),
        0.70,
    )
    add(
        "Client.stream(websocket) events/s vs the openai SDK's WebSocket mode",
        versus("openai SDK, WebSocket mode"),
        1.5,
    )
    add(
        "Client.stream(websocket) events/s vs the openai SDK's HTTP streaming",
        versus("openai SDK, HTTP streaming"),
        2.0,
    )
    loops = report.get("agent_loop", {}).get("results", {})
    ws, sse = (
        loops.get("openai-ws Client.stream (websocket)"),
        loops.get("openai-ws Client.stream (sse)"),
    )
    if ws and sse:
        add(
            "agent loop: bytes uploaded, WebSocket vs full-history HTTP",
            _ratio(ws["bytes_uploaded"], sse["bytes_uploaded"]),
            0.10,
            higher=False,
        )
        add(
            "agent loop: wall time, WebSocket vs full-history HTTP",
            _ratio(ws["seconds"], sse["seconds"]),
            0.60,
            higher=False,
        )
    levels = report.get("concurrency", {}).get("levels", [])
    top = max(levels, key=lambda level: level["sessions"]) if levels else None
    if top is not None:
        clean = top["errors"] == 0 and top["threads_after_release"] == 0
        targets.append(
            {
                "target": f"{top['sessions']} concurrent sessions: zero errors, "
                "no thread left after release",
                "goal": 0,
                "ratio": None,
                "met": clean,
                "detail": f"{top['errors']} errors, {top['threads_after_release']} threads left",
            }
        )
    return targets


def _fmt(stats: dict[str, float], unit: str = "", scale: float = 1.0, digits: int = 0) -> str:
    median, low, high = (stats[k] * scale for k in ("median", "min", "max"))
    return f"{median:,.{digits}f}{unit} [{low:,.{digits}f}-{high:,.{digits}f}]"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    out = []
    info = report["machine"]
    out.append(
        f"openai-ws benchmark ({report['mode']}): {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}"
    )
    out.append("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    out.append(
        "Every figure: median [min-max] of repeated runs; the emulator runs in its own process."
    )
    tp = report.get("throughput")
    if tp:
        out.append(
            f"\n1. Event throughput: one response of {tp['words']:,} text deltas, no delay "
            f"({tp['repeats']} runs each)"
        )
        floor = tp["results"].get("raw websocket-client", {}).get("events_per_s")
        rows = [["client", "events/s", "CPU s per 1,000 events", "vs raw websocket-client"]]
        for name, entry in tp["results"].items():
            ratio = _ratio(entry["events_per_s"], floor) if floor else None
            rows.append(
                [
                    name,
                    _fmt(summary(entry["events_per_s"])),
                    _fmt(summary(entry["cpu_per_1k"]), digits=4),
                    f"{ratio['median']:.2f}x" if ratio else "-",
                ]
            )
        out.append(_table(rows))
    loops = report.get("agent_loop")
    if loops:
        out.append(
            f"\n2. Agent loop: {loops['tool_turns']} tool turns (about 2 KB per tool output), "
            f"the emulator's default latency model ({loops['repeats']} runs each)"
        )
        rows = [
            [
                "client",
                "wall time",
                "first token per turn",
                "bytes uploaded",
                "requests",
                "connections",
            ]
        ]
        for name, entry in loops["results"].items():
            rows.append(
                [
                    name,
                    _fmt(summary(entry["seconds"]), " s", digits=2),
                    _fmt(summary(entry["first_token"]), " ms", 1000),
                    f"{statistics.median(entry['bytes_uploaded']):,.0f}",
                    f"{statistics.median(entry['requests']):.0f}",
                    f"{statistics.median(entry['connections']):.0f}",
                ]
            )
        out.append(_table(rows))
    conc = report.get("concurrency")
    if conc:
        out.append(
            f"\n3. Concurrency: sessions in parallel threads, {conc['turns_per_session']} turns "
            "each, Client.stream over WebSocket"
        )
        rows = [
            [
                "sessions",
                "turns/s",
                "errors",
                "peak RSS",
                "open sockets (reader threads)",
                "threads after release",
            ]
        ]
        for level in conc["levels"]:
            rows.append(
                [
                    str(level["sessions"]),
                    f"{level['turns_per_second']:,.0f}",
                    str(level["errors"]),
                    f"{level['peak_rss_mib']:.0f} MiB",
                    str(level["threads_before_release"]),
                    str(level["threads_after_release"]),
                ]
            )
        out.append(_table(rows))
    cw = report.get("cold_warm")
    if cw:
        out.append(
            f"\n4. Time to first event ({cw['repeats']} runs; {cw['instructions_chars']:,} "
            "characters of instructions)"
        )
        rows = [["case", "time to first event"]]
        for name, values in cw["results"].items():
            rows.append([name, _fmt(summary(values), " ms", 1000, 1)])
        out.append(_table(rows))
    targets = report.get("targets", [])
    if targets:
        out.append("\nTargets")
        rows = [["target", "goal", "measured (median [min-max])", "met"]]
        for target in targets:
            ratio = target["ratio"]
            measured = _fmt(ratio, "x", digits=2) if ratio else target.get("detail", "not measured")
            goal = target["goal"]
            met = {True: "yes", False: "NO", None: "-"}[target["met"]]
            rows.append(
                [
                    target["target"],
                    f"{goal}x" if isinstance(goal, float) else str(goal),
                    measured,
                    met,
                ]
            )
        out.append(_table(rows))
    out.append(f"\n(total {report['seconds']:.0f} s)")
    return "\n".join(out)


def default_results_dir() -> Path:
    """Where results go without ``--json``: the system's temporary folder, never the current
    directory (a user may run ``openai-ws bench`` anywhere)."""
    return Path(tempfile.gettempdir()) / "openai-ws-bench"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="openai-ws bench",
        description="The side-by-side benchmark: every competitor against the same emulator, "
        "medians of repeated runs (see docs/topics/performance.rst).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer repeats (under 2 minutes)")
    mode.add_argument("--full", action="store_true", help="every repeat (the default)")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, to check the harness works")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="the JSON file to write the results to "
        f"(default: a new file in {default_results_dir()})",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("throughput", "agent_loop", "concurrency", "cold_warm"),
        default=None,
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = PLANS[name]
    chosen = args.only or ["throughput", "agent_loop", "concurrency", "cold_warm"]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    report: dict[str, Any] = {
        "mode": name,
        "plan": attrs.asdict(plan),
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    runners = {
        "throughput": throughput,
        "agent_loop": agent_loops,
        "concurrency": concurrency,
        "cold_warm": cold_warm,
    }
    for key in chosen:
        log(f"running {key}...")
        report[key] = runners[key](plan, log)
    report["targets"] = evaluate(report)
    report["seconds"] = time.perf_counter() - started
    print(render(report))
    path = (
        args.json or default_results_dir() / f"bench-{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"results written to {path}")
    lingering = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
    ]
    if lingering:
        log(f"warning: threads still running: {lingering}")
    return 0
