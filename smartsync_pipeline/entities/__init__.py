"""The entity registry: one spec per QBO entity, shared by every layer."""

from smartsync_pipeline.entities.registry import (
    ENTITIES,
    Column,
    EntitySpec,
    Freshness,
    UnknownEntityError,
    entity,
    entity_names,
    find_entity,
    iter_entities,
)

__all__ = [
    "ENTITIES",
    "Column",
    "EntitySpec",
    "Freshness",
    "UnknownEntityError",
    "entity",
    "entity_names",
    "find_entity",
    "iter_entities",
]
