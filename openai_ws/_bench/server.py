"""The emulator in a process of its own, so that its work never competes with the client being
measured for the GIL.

``python -m openai_ws._bench.server --latency default`` prints one JSON line with the URLs, then
answers ``stats`` on stdin with one JSON line of counters, and stops at end of input.
"""

from __future__ import annotations

import argparse
import json
import sys

import attrs

from ..testing import FakeResponsesServer, FunctionCall, LatencyModel, ModelRequest, Text, Turn
from .competitors import API_KEY


class BenchModel:
    """What the benchmark asks for, read from the last user message:

    * ``stream N``: one text answer of N words, one delta each;
    * ``loop N``: call ``lookup`` until N results followed the message, then answer;
    * anything else: ``ok``.
    """

    def __call__(self, request: ModelRequest) -> Turn:
        words = request.last_user_text.split()
        if len(words) == 2 and words[1].isdigit():
            count = int(words[1])
            if words[0] == "stream":
                return Turn((Text(" ".join(["tok"] * count)),))
            if words[0] == "loop":
                index = request.last_user_index or 0
                done = sum(
                    1
                    for item in request.context[index + 1 :]
                    if item.get("type") == "function_call_output"
                )
                if done < count:
                    return Turn((FunctionCall("lookup", {"step": done}),))
                return Turn((Text(f"Finished {count} steps."),))
        return Turn((Text("ok"),))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", choices=("instant", "default", "realistic"), default="instant")
    args = parser.parse_args()
    latency = {
        "instant": LatencyModel.instant(),
        "default": LatencyModel(),
        "realistic": LatencyModel.realistic(),
    }[args.latency]
    with FakeResponsesServer(model=BenchModel(), latency=latency, api_key=API_KEY) as server:
        print(
            json.dumps({"ws_url": server.ws_url, "http_base_url": server.http_base_url}), flush=True
        )
        for line in sys.stdin:
            if line.strip() == "stats":
                print(json.dumps(attrs.asdict(server.stats)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
