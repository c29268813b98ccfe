"""Print the ONNX node-test conformance table of the importer + reference interpreter.

    python tests/conformance/run_conformance.py [-v] [OP ...]

-v also lists every unsupported and failing case with its message.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from node_cases import run_all


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ops", nargs="*", help="only these op types")
    ap.add_argument(
        "-v", "--verbose", action="store_true", help="list unsupported and failing cases"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = run_all(set(args.ops) if args.ops else None)
    width = max(len(r.op) for r in rows)
    print(f"{'op type':<{width}}  cases  passed  unsupported  failed  folded")
    totals = [0, 0, 0, 0, 0]
    for r in rows:
        n = [len(r.outcomes), r.count("pass"), r.count("unsupported"), r.count("fail"),
             sum(o.folded for o in r.outcomes if o.status == "pass")]  # fmt: skip
        totals = [t + x for t, x in zip(totals, n)]
        print(f"{r.op:<{width}}  {n[0]:>5}  {n[1]:>6}  {n[2]:>11}  {n[3]:>6}  {n[4]:>6}")
    print(
        f"{'total':<{width}}  {totals[0]:>5}  {totals[1]:>6}  {totals[2]:>11}  {totals[3]:>6}  {totals[4]:>6}"
    )
    print(
        f"({time.perf_counter() - t0:.1f} s; 'folded' = passed with every value computed at import)"
    )
    for status in ("unsupported", "fail"):
        listed = [o for r in rows for o in r.outcomes if o.status == status]
        if listed and (args.verbose or status == "fail"):
            print(f"\n{status}:")
            for o in listed:
                print(f"  {o.name}: {o.message}")
    if args.verbose is False and totals[2]:
        print(f"\n{totals[2]} unsupported cases (listed with -v)")
    return 1 if totals[3] else 0


if __name__ == "__main__":
    sys.exit(main())
