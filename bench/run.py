"""`make bench`: every benchmark, then docs/PERFORMANCE.md.

    python -m bench.run [--quick] [--only cost,webhook,package,local] [--budget SECONDS]

Steps run in order (cost, cold starts of the lite functions, webhook, package, local end to
end, languages (the share of replies in the writer's language), micro, report), each
writing its bench/results/<name>.json. The machine is shared, so `--budget` (default
540 s) keeps the whole run under ten minutes: a step that would start after the budget is
spent runs in its quick form instead. `--quick` runs every step small (a
smoke run, about two minutes) and writes under bench/results/tmp/quick/ (git-ignored),
leaving the committed results alone.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.environment import machine, write_result

STEPS = ("cost", "cold", "webhook", "package", "local", "languages", "micro")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small runs of every step")
    parser.add_argument("--only", default=",".join(STEPS), help="comma-separated steps")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    started = time.time()
    timings: dict[str, float] = {}

    def late() -> bool:
        return args.quick or time.time() - started > args.budget * 0.6

    def step(name: str, fn, *fn_args) -> None:  # type: ignore[no-untyped-def]
        if name not in only:
            return
        print(f"== {name}", flush=True)
        t0 = time.time()
        fn(*fn_args)
        timings[name] = round(time.time() - t0, 1)
        print(f"   {name}: {timings[name]} s", flush=True)

    from bench import (
        cold_start,
        cost,
        environment,
        languages,
        local_e2e,
        micro,
        package,
        report,
        webhook,
    )

    if args.quick:
        # A smoke run never overwrites the committed results or docs/PERFORMANCE.md.
        quick_dir = environment.SCRATCH_DIR / "quick"
        environment.RESULTS_DIR = quick_dir
        report.DOC = quick_dir / "PERFORMANCE.md"
        report.CHART = quick_dir / "performance-cost.png"
        print(f"quick run: results and report under {quick_dir}", flush=True)

    step("cost", cost.main, ["--messages", "60"] if args.quick else [])
    step("cold", cold_start.main, ["--runs", "1"] if args.quick else [])
    step("webhook", webhook.main, ["--quick"] if late() else [])
    step("package", package.main, [])
    step("local", local_e2e.main, ["--quick"] if late() else [])
    step("languages", languages.main, ["--quick"] if late() else [])
    step("micro", micro.main)
    report.main()
    summary = {
        "machine": machine(),
        "quick": args.quick,
        "step_seconds": timings,
        "total_seconds": round(time.time() - started, 1),
    }
    write_result("run", summary)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
