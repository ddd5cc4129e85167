"""Run the side-by-side benchmark (the same as ``openai-ws bench``).

    python benchmarks/run.py            # the full run (under 15 minutes)
    python benchmarks/run.py --quick    # under 2 minutes
    python benchmarks/run.py --only throughput

The official openai package is compared when it is installed: pip install "openai[realtime]".
"""

from __future__ import annotations

import sys

from openai_ws._bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
