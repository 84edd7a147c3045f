"""Issue 10 item 9: a long full reconciliation of a company never starves its readers.

The full sync runs in its own process and is held in its fetch phase (its listings complete, as of
before the changes below); meanwhile QBO changes and a live read of the same company must refresh
through an incremental sync at once. When the full sync then applies its older listing, nothing the
incremental sync wrote regresses: newer SyncTokens stay, deleted objects stay deleted, and the mirror
equals QBO.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline_tests.mirror_equality import mirror_differences

FULL_ENTITIES = ("Bill", "Vendor", "Invoice", "Payment", "BillPayment")
HELD_FULL_SYNC = textwrap.dedent(
    """
    import json, sys, threading
    from smartsync_pipeline.entities import entity
    from smartsync_pipeline.home import Home
    from smartsync_pipeline.qbo.client import QBOClient
    from smartsync_pipeline.qbo.credentials import CompanyStore
    from smartsync_pipeline.sync.engine import SyncEngine

    home = Home.from_env()
    names = sys.argv[2].split(",")
    listings = {}

    first_page = threading.Lock()

    class ListingsHeldBack:
        '''The real client, except that every entity's listing is read at once, at the first page
        asked for, and handed out only after the test says "go".'''

        def __init__(self, client):
            self.client = client

        def __getattr__(self, name):
            return getattr(self.client, name)

        def page(self, name, start, *, page_size, **kwargs):
            with first_page:
                if not listings:
                    for other in names:
                        inactive = True if entity(other).name_list else None
                        listings[other] = self.client.query_all(other, include_inactive=inactive)
                    print("listed", flush=True)
                    assert sys.stdin.readline().strip() == "go"
            return listings[name][start - 1 : start - 1 + page_size]

    def factory(realm_id):
        store = CompanyStore(home)
        return ListingsHeldBack(QBOClient(store.load(realm_id), store.tokens(realm_id), home=home))

    engine = SyncEngine(home, client_factory=factory)
    report = engine.sync(sys.argv[1], names, mode="full", trigger="schedule")
    print(json.dumps(report.as_dict()), flush=True)
    """
)


def test_incremental_refreshes_run_while_a_full_reconciliation_fetches(connected_company):
    company = connected_company
    company.engine().sync()
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root)}
    full = subprocess.Popen(
        [sys.executable, "-c", HELD_FULL_SYNC, company.realm_id, ",".join(FULL_ENTITIES)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert full.stdout.readline().strip() == "listed", full.stderr.read()

        # QBO moves on after the full listing was taken: creates, updates and deletes.
        changes = [c for c in company.simulate(150, seed=17) if c["entity"] in FULL_ENTITIES]
        assert {"create", "update", "delete"} <= {c["op"] for c in changes}

        # Live reads of the same company refresh now, through incremental syncs.
        reader = company.reader(refresh_wait_seconds=10, record_in_dagster=False)
        refreshed_as_of = {}
        for name in FULL_ENTITIES:
            p = reader.read(name, company.realm_id, max_age=0).provenance
            assert p.source == "api" and not p.stale, p
            refreshed_as_of[name] = p.as_of
        assert reader.stats.get("refresh") == len(FULL_ENTITIES)
        assert mirror_differences(company, list(FULL_ENTITIES)) == {}

        full.stdin.write("go\n")
        full.stdin.flush()
        out, err = full.communicate(timeout=300)
    finally:
        if full.poll() is None:
            full.kill()
            full.wait(10)
    assert full.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["mode"] == "full"
    # The older listing regressed nothing the incremental syncs had written.
    assert mirror_differences(company, list(FULL_ENTITIES)) == {}
    with MirrorDatabase(company.home).inspect() as con:
        assert change_log.verify(con).ok
        last_sync = dict(con.execute("SELECT entity, last_sync_at FROM sync_state").fetchall())
    # Freshness did not move back to the full sync's start, which was before the refreshes.
    assert all(last_sync[name] >= refreshed_as_of[name] for name in FULL_ENTITIES), (last_sync, refreshed_as_of)
