"""What guarding a block against our own faults costs: ``with contain(...)`` vs an inline ``try``.

Both guard the same block (one dictionary read, as cheap as telemetry code gets), and a bare
block is the baseline; the three variants run interleaved in a new random order in each round,
and the medians of the per-use costs are printed in nanoseconds. ``otel_resilience._kit.faults``
says where each form is used: the guard on cold paths, the inline form on per-call paths, where
the guard's extra cost would be a visible share of our own code's.

    .venv/bin/python bench/fault_guard.py [--rounds 21] [--number 200000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import timeit

from otel_resilience._kit.faults import contain, report_fault

GUARD = contain("bench guard")
DATA = {"key": 1}


def bare() -> None:
    DATA.get("key")


def inline() -> None:
    try:
        DATA.get("key")
    except Exception as fault:
        report_fault("bench inline", fault)


def guarded() -> None:
    with GUARD:
        DATA.get("key")


@contain("bench decorated")
def decorated() -> None:
    DATA.get("key")


VARIANTS = {"bare": bare, "inline try": inline, "with contain": guarded, "@contain": decorated}


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--number", type=int, default=200_000)
    options = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(options.rounds):
        order = list(VARIANTS.items())
        random.shuffle(order)
        for name, function in order:
            samples[name].append(timeit.timeit(function, number=options.number) / options.number * 1e9)
    base = statistics.median(samples["bare"])
    print(f"{'variant':<14} {'ns per use':>10} {'over bare':>10}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<14} {median:>10.1f} {median - base:>10.1f}")


if __name__ == "__main__":
    main()
