"""A soak analyst: holds ``analyst.duckdb`` open read-only for the whole run and queries the views.

Run as ``python -m smartsync_pipeline_tests.reliability.analyst_worker --home H --out F --stop-file S``.
The held connection must keep answering while syncs publish new snapshots; every tenth loop it also
opens the link afresh, which must always lead to a complete, queryable snapshot. One JSON line per
problem, and a last line with the totals.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import duckdb

VIEWS = {
    "bills_due": "SELECT count(*), coalesce(sum(balance), 0) FROM bills_due",
    "ap_aging": "SELECT count(*), coalesce(sum(total_open), 0) FROM ap_aging",
    "ar_aging": "SELECT count(*), coalesce(sum(total_open), 0) FROM ar_aging",
    "cash_position": "SELECT count(*), coalesce(sum(current_balance), 0) FROM cash_position",
}


def query_views(con: duckdb.DuckDBPyConnection) -> dict[str, list[float]]:
    return {name: [float(v) for v in con.execute(sql).fetchone()] for name, sql in VIEWS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--pause", type=float, default=0.2)
    parser.add_argument("--deadline", type=float, required=True)
    args = parser.parse_args(argv)

    link = Path(args.home) / "analyst.duckdb"
    stop_file = Path(args.stop_file)
    loops = fresh_opens = errors = 0
    held = duckdb.connect(str(link), read_only=True)
    held_file = os.path.realpath(link)
    first = query_views(held)
    with open(args.out, "a", buffering=1) as out:
        out.write(json.dumps({"kind": "ready", "held_file": os.path.basename(held_file), "views": first}) + "\n")
        while not stop_file.exists() and time.time() < args.deadline:
            loops += 1
            try:
                answer = query_views(held)
                if answer != first:  # the held snapshot is immutable: same answers every time
                    errors += 1
                    out.write(json.dumps({"kind": "error", "what": "held snapshot changed", "views": answer}) + "\n")
                if loops % 10 == 0:
                    fresh = duckdb.connect(str(link), read_only=True)
                    try:
                        query_views(fresh)
                    finally:
                        fresh.close()
                    fresh_opens += 1
            except Exception as exc:
                errors += 1
                out.write(json.dumps({"kind": "error", "what": f"{type(exc).__name__}: {str(exc)[:300]}"}) + "\n")
            time.sleep(args.pause)  # an analyst's pace; nothing waits on it
        held.close()
        out.write(json.dumps({"kind": "done", "loops": loops, "fresh_opens": fresh_opens, "errors": errors}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
