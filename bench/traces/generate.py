"""Writes the synthetic traces shipped beside this file, from fixed seeds (run again: same bytes).

    .venv/bin/python bench/traces/generate.py

bursty-week.csv (seed 1): a diurnal base of single checkouts, two nightly fan-outs of 30-100 jobs a day,
and a few fan-outs at random hours of the working day; steady-week.csv (seed 1): the base alone.
bursty-week-before-{1,2,3}.csv: three earlier weeks of the same process (seeds 2-4) an autoscaled pool
learns from first, as a manager running for a while would have.
"""

from __future__ import annotations

from pathlib import Path

from vmpooler.simulation.trace import bursty_week, steady_week, write_trace

HERE = Path(__file__).parent


def main() -> None:
    write_trace(HERE / "bursty-week.csv", bursty_week(1))
    write_trace(HERE / "steady-week.csv", steady_week(1))
    for weeks_before, seed in ((3, 2), (2, 3), (1, 4)):
        write_trace(HERE / f"bursty-week-before-{weeks_before}.csv", bursty_week(seed))


if __name__ == "__main__":
    main()
