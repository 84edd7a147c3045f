"""The ``realms`` dynamic partitions: one partition per connected QBO company.

Mirror assets are partitioned by realm, so every run syncs exactly one company and the UI shows each
company's history separately. ``smartsync connect`` registers the realm here when a Dagster instance
is configured (``DAGSTER_HOME``); sensors add any connected realm that is still missing.
"""

from __future__ import annotations

import logging
import os
import time

import dagster as dg

REALMS_PARTITIONS_NAME = "realms"

realms = dg.DynamicPartitionsDefinition(name=REALMS_PARTITIONS_NAME)

log = logging.getLogger("smartsync.defs")


def connected_realms(instance: dg.DagsterInstance) -> list[str]:
    """Realm ids registered as partitions on ``instance``, sorted."""
    return sorted(instance.get_dynamic_partitions(REALMS_PARTITIONS_NAME))


class PartitionRegistrationError(RuntimeError):
    """A configured Dagster instance did not take the realm as a partition."""


def register_realm(realm_id: str, attempts: int = 5) -> bool:
    """Add ``realm_id`` to the ``realms`` partitions of the instance at ``DAGSTER_HOME``.

    Returns True when the realm is a partition afterwards (added now, by a concurrent connect, or
    already there), False when no Dagster instance is configured. Idempotent: two processes adding
    the same realm at once collide on the storage's unique key, and the loser finds it there. Raises
    ``PartitionRegistrationError`` when a configured instance still refuses after ``attempts``.
    """
    if not os.environ.get("DAGSTER_HOME"):
        return False
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            with dg.DagsterInstance.get() as instance:
                try:
                    if not instance.has_dynamic_partition(REALMS_PARTITIONS_NAME, realm_id):
                        instance.add_dynamic_partitions(REALMS_PARTITIONS_NAME, [realm_id])
                    return True
                except Exception as exc:  # e.g. IntegrityError: a concurrent connect added it first
                    if instance.has_dynamic_partition(REALMS_PARTITIONS_NAME, realm_id):
                        return True
                    raise exc from None
        except Exception as exc:  # storage busy or unreachable: try again, bounded
            last = exc
            log.debug("adding company %s as a Dagster partition, attempt %d: %s", realm_id, attempt + 1, exc)
            time.sleep(0.05 * 2**attempt)
    reason = " ".join(str(last).split())[:300]
    raise PartitionRegistrationError(f"{type(last).__name__}: {reason}")


def unregister_realm(realm_id: str) -> bool:
    """Remove ``realm_id`` from the ``realms`` partitions (``smartsync disconnect``); True when it is
    not a partition afterwards on a configured instance. Never raises: the company's data is already
    gone or parked, and a partition left behind only shows an idle company in the UI."""
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
