"""The ``realms`` dynamic partitions: one partition per connected QBO company.

Mirror assets are partitioned by realm, so every run syncs exactly one company and the UI shows each
company's history separately. ``smartsync connect`` registers the realm here when a Dagster instance
is configured (``DAGSTER_HOME``); sensors add any connected realm that is still missing.
"""

from __future__ import annotations

import logging
import os

import dagster as dg

REALMS_PARTITIONS_NAME = "realms"

realms = dg.DynamicPartitionsDefinition(name=REALMS_PARTITIONS_NAME)

log = logging.getLogger("smartsync.defs")


def connected_realms(instance: dg.DagsterInstance) -> list[str]:
    """Realm ids registered as partitions on ``instance``, sorted."""
    return sorted(instance.get_dynamic_partitions(REALMS_PARTITIONS_NAME))


def register_realm(realm_id: str) -> bool:
    """Add ``realm_id`` to the ``realms`` partitions of the instance at ``DAGSTER_HOME``.

    Returns True when the realm is a partition afterwards (added now or already there), False when
    Dagster is not configured or the instance could not be opened. Never raises: connecting a company
    must not fail because the orchestrator is absent or misconfigured.
    """
    if not os.environ.get("DAGSTER_HOME"):
        return False
    try:
        with dg.DagsterInstance.get() as instance:
            if not instance.has_dynamic_partition(REALMS_PARTITIONS_NAME, realm_id):
                instance.add_dynamic_partitions(REALMS_PARTITIONS_NAME, [realm_id])
            return True
    except Exception as exc:  # any failure here must leave the connect itself successful
        log.warning("could not register company %s as a Dagster partition: %s", realm_id, exc)
        return False


def unregister_realm(realm_id: str) -> bool:
    """Remove ``realm_id`` from the ``realms`` partitions (``smartsync disconnect``); True when it is
    not a partition afterwards on a configured instance. Never raises, like ``register_realm``."""
    if not os.environ.get("DAGSTER_HOME"):
        return False
    try:
        with dg.DagsterInstance.get() as instance:
            if instance.has_dynamic_partition(REALMS_PARTITIONS_NAME, realm_id):
                instance.delete_dynamic_partition(REALMS_PARTITIONS_NAME, realm_id)
            return True
    except Exception as exc:
        log.warning("could not remove company %s from the Dagster partitions: %s", realm_id, exc)
        return False
