"""Writes the synthetic traces shipped beside this file, from fixed seeds (run again: same bytes).

    .venv/bin/python bench/traces/generate.py

bursty-week.csv (seed 1): a diurnal base of single checkouts, two nightly fan-outs of 30-100 jobs a day,
and a few fan-outs at random hours of the working day; steady-week.csv (seed 1): the base alone.
With ``--warmups DIR``, also bursty-week-before-{1,2,3}.csv there: three earlier weeks of the same process
(seeds 4, 3, 2) for ``vmpooler simulate --warmup``; bench/autoscale.py draws them in-process instead
(``WARMUP_SEEDS``), so they are not stored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vmpooler.simulation.trace import bursty_week, steady_week, write_trace

HERE = Path(__file__).parent
#: weeks before the bursty week -> the seed of its draw
WARMUP_SEEDS = {3: 2, 2: 3, 1: 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--warmups", type=Path, metavar="DIR", help="also write the three earlier weeks here")
    args = parser.parse_args()
    write_trace(HERE / "bursty-week.csv", bursty_week(1))
    write_trace(HERE / "steady-week.csv", steady_week(1))
    if args.warmups:
        args.warmups.mkdir(parents=True, exist_ok=True)
        for weeks_before, seed in WARMUP_SEEDS.items():
            write_trace(args.warmups / f"bursty-week-before-{weeks_before}.csv", bursty_week(seed))


if __name__ == "__main__":
    main()
