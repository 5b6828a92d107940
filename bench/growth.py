"""Each stage's growth between `recpipe bench` reports of different sizes, beside its floor's.

    .venv/bin/python bench/growth.py /tmp/recpipe-bench/medium/bench.json \\
        /tmp/recpipe-bench/large/bench.json

Prints a Markdown table: each stage's wall seconds per report, the log-log exponent in landed
events (1.0 = linear), its floor and the floor's exponent (see
`recpipe.tasks.benchmark.stage_growth`). Reports are named after their directory (the preset).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from recpipe.tasks.benchmark.stage_growth import growth_markdown


def main(paths: list[str]) -> None:
    if len(paths) < 2:
        sys.exit(__doc__)
    reports = [json.loads(Path(p).read_text()) for p in paths]
    print(growth_markdown([Path(p).parent.name for p in paths], reports))


if __name__ == "__main__":
    main(sys.argv[1:])
