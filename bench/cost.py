"""Cost per million messages: Magpie's profiles measured, against the reference's plan.

`python -m bench.cost [--profiles a,b] [--messages N]` writes bench/results/cost.json.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench import aws_cost, payloads, pricing, reference, x_bill
from bench.environment import machine, write_result

README_ESTIMATE_GBP = {"ai": 1500, "infra": 130, "total": 1700}  # per million, 50/50, its README
TARGETS = {"same-features": 1.0, "replies-only": 0.5, "lite": 0.05}


def readme_check() -> dict[str, Any]:
    """Our model of the reference's plan on its README's own assumption, against its estimate."""
    table = pricing.price_table()
    bill = reference.reference_bill(reference.readme_assumption_messages())["bill"]
    rate = table["usd_per_gbp"]
    ours = {
        "ai": bill["ai_per_million_usd"] / rate,
        "infra": bill["infra_per_million_usd"] / rate,
        "total": bill["per_million_usd"] / rate,
    }
    return {
        "assumption": "1M messages, 50% text only, 50% with one photo, tweet-sized text",
        "usd_per_gbp": rate,
        "readme_gbp": README_ESTIMATE_GBP,
        "our_model_gbp": ours,
        "ratio": {k: ours[k] / README_ESTIMATE_GBP[k] for k in ours},
        "by_service_usd": bill["by_service_per_million_usd"],
    }


def run(profiles: list[str], count: int | None = None) -> dict[str, Any]:
    messages = payloads.messages()[:count] if count else payloads.messages()
    started = time.time()
    ref = reference.reference_bill(messages)
    ref_million = ref["bill"]["per_million_usd"]
    ref_x = x_bill.reference(messages)
    ref_whole = ref_million + ref_x["per_million_usd"]
    results: dict[str, Any] = {}
    for profile in profiles:
        t0 = time.time()
        result = aws_cost.run_profile(profile, messages)
        result["seconds"] = round(time.time() - t0, 1)
        share = result["bill"]["per_million_usd"] / ref_million
        result["share_of_reference"] = share
        target = TARGETS.get(profile)
        result["target_share"] = target
        result["meets_target"] = None if target is None else share <= target
        result["whole_bill"] = whole_bill(result["bill"], result["x_bill"], ref_whole)
        results[profile] = result
        print(
            f"  {profile}: ${result['bill']['per_million_usd']:,.0f} per million "
            f"({share:.1%} of the reference) in {result['seconds']} s; with X "
            f"${result['whole_bill']['total_per_million_usd']:,.0f}"
        )
    photos = sum(len(m["images"]) for m in messages)
    return {
        "machine": machine(),
        "corpus": {
            "messages": len(messages),
            "text_only": sum(1 for m in messages if not m["images"]),
            "with_photos": sum(1 for m in messages if m["images"]),
            "photos": photos,
            "direct_messages": sum(1 for m in messages if m["kind"] == "DIRECT_MESSAGE"),
            "languages": _tally(m["language"] for m in messages),
        },
        "prices": {
            k: pricing.price_table()[k] for k in ("region", "taken", "caveat", "usd_per_gbp")
        },
        "reference": {
            "usage": ref["usage"],
            "bill": ref["bill"],
            "plan": reference.__doc__,
            "x_bill": ref_x,
            "whole_bill": whole_bill(ref["bill"], ref_x, ref_whole),
        },
        "x_prices": {k: x_bill.x_price_table()[k] for k in ("source", "caveat")},
        "x_crash_scenario": x_bill.crash_scenario(),
        "readme_check": readme_check(),
        "profiles": results,
        "seconds": round(time.time() - started, 1),
    }


def whole_bill(aws: dict[str, Any], x: dict[str, Any], reference_total: float) -> dict[str, Any]:
    """AWS and X together, per million messages, and its share of the reference's whole bill."""
    total = aws["per_million_usd"] + x["per_million_usd"]
    return {
        "aws_per_million_usd": aws["per_million_usd"],
        "x_per_million_usd": x["per_million_usd"],
        "total_per_million_usd": total,
        "share_of_reference": total / reference_total,
    }


def _tally(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[str(value)] = out.get(str(value), 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", default=",".join(aws_cost.PROFILES))
    parser.add_argument("--messages", type=int, default=None, help="only the first N messages")
    args = parser.parse_args(argv)
    result = run(args.profiles.split(","), args.messages)
    path = write_result("cost", result)
    print(f"wrote {path}")
    print(
        json.dumps({p: round(r["bill"]["per_million_usd"]) for p, r in result["profiles"].items()})
    )


if __name__ == "__main__":
    main()
