"""Run the chaos soak from a shell and print its summary table; exit 1 when anything was lost.

    .venv/bin/python bench/soak.py                      # the full soak: medium realm, 120 s (SMARTSYNC_SOAK_SECONDS)
    .venv/bin/python bench/soak.py --short              # the default-run version: small realm, 30 s
    .venv/bin/python bench/soak.py --seconds 600 --workdir /tmp/soak --keep

The same code runs as ``make soak`` (pytest -m soak) and, in its short form, in every ``make test``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smartsync_pipeline_tests.reliability.chaos_soak import run_soak  # noqa: E402
from smartsync_pipeline_tests.reliability.soak_config import SoakConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short version (small realm, ~30 s)")
    parser.add_argument("--seconds", type=float, help="length of the chaos phase")
    parser.add_argument("--scale", choices=["small", "medium", "large"], help="sandbox size (default: the preset's)")
    parser.add_argument("--workdir", type=Path, help="where to keep state and logs (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir even when nothing was lost")
    args = parser.parse_args()
    config = SoakConfig.short() if args.short else SoakConfig.full()
    if args.seconds:
        config = config.with_seconds(args.seconds)
    if args.scale:
        config = dataclasses.replace(config, scale=args.scale)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="smartsync-soak-"))
    result = run_soak(config, workdir)
    print(result.summary)
    for line in sorted(result.facts.faults.lines):
        print("  fault", line)
    if result.problems:
        print(f"\nSOAK FAILED: {len(result.problems)} problem(s); logs in {workdir}")
        for problem in result.problems:
            print(" -", problem)
        return 1
    print(f"\nsoak passed: nothing lost ({workdir})")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
