"""The orchestrating host's side: ``python -m smartsync_pipeline_tests.distributed.launcher REALM...``
starts one ``mirror_sync`` run per company, each exactly as ``dagster job execute`` would (its sync
step only), and exits 0 when every run succeeded. The code is imported once and each run gets a forked
child, so a handful of runs start in a second instead of paying Dagster's import per process on a
2-core machine. Prints ``<realm> <exit code>`` per run.
"""

from __future__ import annotations

import json
import os
import sys


def main(realms: list[str]) -> int:
    from dagster._cli import cli

    import smartsync_pipeline.definitions  # noqa: F401 - imported once, before forking

    children: dict[int, str] = {}
    for realm in realms:
        pid = os.fork()
        if pid == 0:
            argv = ["job", "execute", "-m", "smartsync_pipeline.definitions", "-j", "mirror_sync"]
            argv += ["--tags", json.dumps({"dagster/partition": realm}), "--op-selection", "qbo_mirrors"]
            try:
                cli.main(argv, prog_name="dagster", standalone_mode=False)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        children[pid] = realm
    failed = 0
    while children:
        pid, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        print(f"{children.pop(pid)} {code}", flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
