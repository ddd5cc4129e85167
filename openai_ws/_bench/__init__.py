"""The side-by-side benchmark: ``openai-ws bench`` (or ``python benchmarks/run.py``).

Every server runs in a process of its own: the replay server (prebuilt frames and bodies, see
:mod:`openai_ws._bench.replay`) for throughput, the per-turn CPU and scale, whose own ceiling is
measured and printed, and the emulator for the scenarios where its latency model and state
matter. Every
figure is the median of repeated runs, with the min and max; ratios are computed run by run
(the competitors take turns within each repeat) and then summarised the same way. See
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
from typing import Any, Final

import attrs

from .. import protocol
from .competitors import (
    API_KEY,
    Urls,
    loop_competitors,
    throughput_competitors,
    turn_competitors,
)

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
    conversation_turns: int
    turn_repeats: int
    scale_sessions: int
    scale_turns: int
    scale_repeats: int


PLANS = {
    "full": Plan(20_000, 7, 30, 3, (1, 16, 64, 256), 5, 15, 150, 31, 1024, 5, 3),
    "quick": Plan(20_000, 3, 30, 1, (1, 16, 64, 256), 5, 5, 150, 9, 256, 5, 1),
    "smoke": Plan(300, 1, 3, 1, (1, 4), 2, 2, 12, 1, 8, 2, 1),
}

#: the scale scenario's server latency (seconds before each reply), as in the issue's figures
SCALE_DELAY = 0.03


class ServerProcess:
    """A benchmark server in a child process (so that its work never competes with the client
    being measured): it prints one JSON line with its URLs, then answers each line written to
    its stdin with one JSON line, and stops at the end of its input."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the server process ({module}) did not start")
        urls = json.loads(line)
        self.urls = Urls(urls["ws_url"], urls["http_base_url"], API_KEY)

    def ask(self, line: str) -> dict[str, Any]:
        """Send one command line; its one-line JSON answer."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        result: dict[str, Any] = json.loads(self.process.stdout.readline())
        return result

    def __enter__(self) -> ServerProcess:
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


def start_emulator(latency: str) -> ServerProcess:
    """The emulator (:mod:`openai_ws._bench.server`) in a child process; ``ask("stats")``
    gives its counters."""
    return ServerProcess("openai_ws._bench.server", "--latency", latency)


def start_replay(delay: float = 0.0, *, per_event: bool = False) -> ServerProcess:
    """The replay server (:mod:`openai_ws._bench.replay`) in a child process; ``ask("size N")``
    gives the sizes of the answer to ``stream N``. *per_event*: one write per event."""
    extra = ("--per-event",) if per_event else ()
    return ServerProcess("openai_ws._bench.replay", "--delay", str(delay), *extra)


def load() -> float:
    """The machine's one-minute load average (noted next to each scenario's figures)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _versions() -> dict[str, str]:
    out = {}
    for name in (
        "openai-ws",
        "websocket-client",
        "websockets",
        "requests",
        "orjson",
        "openai",
        "httpx",
    ):
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
        "speedups": protocol._orjson is not None,
    }


# -- scenarios ----------------------------------------------------------------------------------


def throughput(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    from .replay import ceiling  # here: ``python -m openai_ws._bench.replay`` runs that module

    ceilings: dict[str, list[float]] = {"websocket": [], "sse": []}
    loads = [load()]
    with start_replay() as server:
        sizes = server.ask(f"size {plan.words}")
        competitors = throughput_competitors(server.urls)
        results: dict[str, dict[str, list[float]]] = {
            c.name: {"events_per_s": [], "cpu_per_1k": [], "events": []} for c in competitors
        }
        for competitor in competitors:
            competitor.setup()
            competitor.stream(min(plan.words, 500))  # warm: imports, caches, the first connection
        try:
            for repeat in range(plan.repeats):
                # the server's ceiling: a trivial raw client, in this process, in each repeat
                # (the best of three reads: a ceiling is what the server can do)
                for transport, key in (("ws", "websocket"), ("sse", "sse")):
                    best = max(
                        ceiling(server.urls.ws_url, plan.words, sizes, transport) for _ in range(3)
                    )
                    ceilings[key].append(best)
                for competitor in competitors:
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    events = competitor.stream(plan.words)
                    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                    entry = results[competitor.name]
                    entry["events_per_s"].append(events / wall)
                    entry["cpu_per_1k"].append(cpu / events * 1000)
                    entry["events"].append(events)
                loads.append(load())
                log(f"  throughput: repeat {repeat + 1}/{plan.repeats} done")
        finally:
            for competitor in competitors:
                competitor.close()
    return {
        "words": plan.words,
        "repeats": plan.repeats,
        "server": "replay",
        "server_ceiling": ceilings,
        "load": loads,
        "results": results,
    }


#: Turns each client runs before the other takes its turn, in the per-turn CPU scenario.
_BLOCK: Final = 10


def turn_cost(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    """Client CPU per short turn along one long conversation, raw websocket-client against
    Client.stream (websocket), against the replay server writing each event on its own (as the
    service does). Not the emulator: its own work grows with the conversation, and on a small
    machine its CPU competes with the client's, which made both clients' later turns look
    dearer."""
    loads = [load()]
    window = max(1, min(10, plan.conversation_turns // 4))
    results: dict[str, dict[str, list[float]]] = {}
    with start_replay(per_event=True) as server:
        for _ in range(plan.turn_repeats):
            competitors = turn_competitors(server.urls)
            for competitor in competitors:
                competitor.setup()
            # the clients take turns, _BLOCK turns each (the first one alternating), so that
            # both meet the same moments of the machine (a whole conversation takes about
            # 50 ms, and a shared machine's slow spells last about as long) while each still
            # runs with its own code in the caches, as it would alone
            running = [c.turn_costs(plan.conversation_turns) for c in competitors]
            measured: list[list[float]] = [[] for _ in competitors]
            for block, start in enumerate(range(0, plan.conversation_turns, _BLOCK)):
                size = min(_BLOCK, plan.conversation_turns - start)
                order = range(len(running)) if block % 2 == 0 else reversed(range(len(running)))
                for index in order:
                    measured[index].extend(next(running[index]) for _ in range(size))
            for competitor, costs in zip(competitors, measured, strict=True):
                competitor.close()
                entry = results.setdefault(competitor.name, {"early": [], "late": [], "all": []})
                # turn 1 connects: the early window starts at turn 2
                entry["early"].append(statistics.median(costs[1 : 1 + window]))
                entry["late"].append(statistics.median(costs[-window:]))
                entry["all"].append(statistics.median(costs[1:]))
            loads.append(load())
            log("  turn cost: repeat done")
    return {
        "turns": plan.conversation_turns,
        "window": window,
        "block": _BLOCK,
        "repeats": plan.turn_repeats,
        "load": loads,
        "results": results,
    }


def many_sessions(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    """Many concurrent sessions of short turns on the replay server (a fixed delay before each
    reply): Client.stream against raw websocket-client threads, each in a fresh process."""
    loads = [load()]
    results: dict[str, list[dict[str, Any]]] = {"raw": [], "client": []}
    with start_replay(SCALE_DELAY) as server:
        urls = json.dumps(attrs.asdict(server.urls))
        for _ in range(plan.scale_repeats):
            for kind in ("raw", "client"):
                output = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "openai_ws._bench.scale",
                        urls,
                        str(plan.scale_sessions),
                        str(plan.scale_turns),
                        kind,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=True,
                ).stdout
                results[kind].append(json.loads(output.strip().splitlines()[-1]))
                loads.append(load())
                log(f"  scale: {kind} done")
    return {
        "sessions": plan.scale_sessions,
        "turns_per_session": plan.scale_turns,
        "delay": SCALE_DELAY,
        "repeats": plan.scale_repeats,
        "load": loads,
        "results": results,
    }


def agent_loops(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    with start_emulator("default") as emulator:
        competitors = loop_competitors(emulator.urls)
        results: dict[str, dict[str, list[float]]] = {}
        for repeat in range(plan.loop_repeats):
            for competitor in competitors:
                before = emulator.ask("stats")
                competitor.setup()
                wall0 = time.perf_counter()
                outcome = competitor.agent_loop(plan.loop_turns)
                wall = time.perf_counter() - wall0
                competitor.close()
                after = emulator.ask("stats")
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
    with start_emulator("default") as emulator:
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
    with start_emulator("default") as emulator:
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

    def add(name: str, ratio: dict[str, float] | None, goal: float, higher: bool = True) -> None:
        if ratio is None:
            targets.append({"target": name, "goal": goal, "ratio": None, "met": None})
            return
        met = ratio["median"] >= goal if higher else ratio["median"] <= goal
        targets.append({"target": name, "goal": goal, "ratio": ratio, "met": met})

    def versus(mine: str, other: str) -> dict[str, float] | None:
        ours = tp.get(mine, {}).get("events_per_s")
        theirs = tp.get(other, {}).get("events_per_s")
        return _ratio(ours, theirs) if ours and theirs else None

    ws, sse = "openai-ws Client.stream (websocket)", "openai-ws Client.stream (sse)"
    add(
        "Client.stream(websocket) events/s vs the raw websocket-client floor",
        versus(ws, "raw websocket-client"),
        0.9,
    )
    add(
        "Client.stream(sse) events/s vs the raw requests + SSE split floor",
        versus(sse, "raw requests + SSE split"),
        0.6,
    )
    add(
        "Client.stream(websocket) events/s vs the openai SDK's WebSocket mode",
        versus(ws, "openai SDK, WebSocket mode"),
        4.0,
    )
    add(
        "Client.stream(sse) events/s vs the openai SDK's HTTP streaming",
        versus(sse, "openai SDK, HTTP streaming"),
        4.0,
    )
    ceilings = report.get("throughput", {}).get("server_ceiling")
    if ceilings and tp:
        # per repeat: the server's lower ceiling against the fastest client of that repeat
        repeats = len(ceilings["websocket"])
        fastest = [max(entry["events_per_s"][i] for entry in tp.values()) for i in range(repeats)]
        lowest = [min(a, b) for a, b in zip(ceilings["websocket"], ceilings["sse"], strict=True)]
        add("the replay server's ceiling vs the fastest client", _ratio(lowest, fastest), 5.0)
    turns = report.get("turn_cost", {}).get("results", {})
    raw_turn, our_turn = turns.get("raw websocket-client"), turns.get(ws)
    if raw_turn and our_turn:
        add(
            "client CPU per short turn, Client.stream(websocket) vs raw websocket-client",
            _ratio(our_turn["all"], raw_turn["all"]),
            1.5,
            higher=False,
        )
        add(
            "client CPU per short turn, Client.stream(websocket): last turns vs turns 2 on",
            _ratio(our_turn["late"], our_turn["early"]),
            1.1,
            higher=False,
        )
    big = report.get("scale", {}).get("results", {})
    if big.get("raw") and big.get("client"):
        mine, theirs = big["client"], big["raw"]
        add(
            f"{report['scale']['sessions']:,} concurrent sessions: turns/s vs raw "
            "websocket-client threads",
            _ratio([r["turns_per_second"] for r in mine], [r["turns_per_second"] for r in theirs]),
            0.8,
        )
        add(
            f"{report['scale']['sessions']:,} concurrent sessions: p99 turn latency vs raw "
            "websocket-client threads",
            _ratio([r["p99"] for r in mine], [r["p99"] for r in theirs]),
            2.0,
            higher=False,
        )
    loops = report.get("agent_loop", {}).get("results", {})
    loop_ws, loop_sse = loops.get(ws), loops.get(sse)
    if loop_ws and loop_sse:
        add(
            "agent loop: bytes uploaded, WebSocket vs full-history HTTP",
            _ratio(loop_ws["bytes_uploaded"], loop_sse["bytes_uploaded"]),
            0.10,
            higher=False,
        )
        add(
            "agent loop: wall time, WebSocket vs full-history HTTP",
            _ratio(loop_ws["seconds"], loop_sse["seconds"]),
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


def _is_sse(name: str) -> bool:
    return "sse" in name.lower() or "SSE" in name or "HTTP" in name


def _loads(section: dict[str, Any]) -> str:
    values = [v for v in section.get("load", []) if v == v]
    if not values:
        return "unknown"
    return f"{min(values):.1f}-{max(values):.1f}"


def render(report: dict[str, Any]) -> str:
    out = []
    info = report["machine"]
    out.append(
        f"openai-ws benchmark ({report['mode']}): {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}"
    )
    out.append("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    speedups = info.get("speedups")
    out.append(
        "speedups (orjson): "
        + ("in use" if speedups else "not in use (not installed, or OPENAI_WS_NO_SPEEDUPS set)")
    )
    out.append(
        "Every figure: median [min-max] of repeated runs; every server runs in its own process. "
        "Ratios are computed repeat by repeat (the competitors take turns within each repeat), "
        "then summarised the same way."
    )
    tp = report.get("throughput")
    if tp:
        out.append(
            f"\n1. Event throughput: one response of {tp['words']:,} text deltas, no delay, "
            f"from the replay server ({tp['repeats']} runs each; load {_loads(tp)})"
        )
        ceilings = tp.get("server_ceiling")
        if ceilings:
            out.append(
                "the replay server's ceiling (a trivial raw socket client, no parsing, best of 3 "
                "in each repeat), events/s: "
                f"websocket {_fmt(summary(ceilings['websocket']))}, "
                f"sse {_fmt(summary(ceilings['sse']))}"
            )
        results = tp["results"]
        floors = {
            "websocket": results.get("raw websocket-client", {}).get("events_per_s"),
            "sse": results.get("raw requests + SSE split", {}).get("events_per_s"),
        }
        rows = [["client", "events/s", "CPU s per 1,000 events", "vs its transport's floor"]]
        for name, entry in results.items():
            floor = floors["sse" if _is_sse(name) else "websocket"]
            ratio = _ratio(entry["events_per_s"], floor) if floor else None
            rows.append(
                [
                    name,
                    _fmt(summary(entry["events_per_s"])),
                    _fmt(summary(entry["cpu_per_1k"]), digits=4),
                    _fmt(ratio, "x", digits=2) if ratio else "-",
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
    tc = report.get("turn_cost")
    if tc:
        out.append(
            f"\n4. Client CPU per short turn along a conversation of {tc['turns']} turns, "
            f"against the replay server, one write per event, the clients taking turns in blocks "
            f"of {tc.get('block', 1)} ({tc['repeats']} runs each; load {_loads(tc)}); medians "
            f"over turns 2-{tc['window'] + 1} and the last {tc['window']}"
        )
        rows = [["client", "turns 2 on", "last turns", "all turns", "last / early"]]
        for name, entry in tc["results"].items():
            rows.append(
                [
                    name,
                    _fmt(summary(entry["early"]), " ms", 1000, 2),
                    _fmt(summary(entry["late"]), " ms", 1000, 2),
                    _fmt(summary(entry["all"]), " ms", 1000, 2),
                    _fmt(_ratio(entry["late"], entry["early"]), "x", digits=2),
                ]
            )
        out.append(_table(rows))
    sc = report.get("scale")
    if sc:
        out.append(
            f"\n5. Scale: {sc['sessions']:,} concurrent sessions, {sc['turns_per_session']} short "
            f"turns each, {sc['delay'] * 1000:.0f} ms before each reply, on the replay server "
            f"({sc['repeats']} runs each, each in a fresh process; load {_loads(sc)})"
        )
        rows = [["client", "turns/s", "p50 turn", "p99 turn", "CPU per turn", "errors"]]
        names = {"raw": "raw websocket-client threads", "client": "Client.stream (websocket)"}
        for kind, runs in sc["results"].items():
            rows.append(
                [
                    names[kind],
                    _fmt(summary([r["turns_per_second"] for r in runs])),
                    _fmt(summary([r["p50"] for r in runs]), " ms", 1000),
                    _fmt(summary([r["p99"] for r in runs]), " ms", 1000),
                    _fmt(summary([r["cpu_ms_per_turn"] for r in runs]), " ms", digits=2),
                    str(sum(r["errors"] for r in runs)),
                ]
            )
        out.append(_table(rows))
    cw = report.get("cold_warm")
    if cw:
        out.append(
            f"\n6. Time to first event ({cw['repeats']} runs; {cw['instructions_chars']:,} "
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


SCENARIOS = ("throughput", "agent_loop", "concurrency", "cold_warm", "turn_cost", "scale")


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
        choices=SCENARIOS,
        default=None,
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = PLANS[name]
    chosen = args.only or list(SCENARIOS)

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
        "turn_cost": turn_cost,
        "scale": many_sessions,
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
