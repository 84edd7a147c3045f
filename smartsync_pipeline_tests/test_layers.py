"""The import contract of ARCHITECTURE.md's layer table: arrows point down only.

Every module's imports are read with ``ast`` (including imports inside functions), so a layer cannot
reach around its neighbours even lazily.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "smartsync_pipeline"

# layer -> smartsync modules it may import (prefixes), besides itself.
ALLOWED: dict[str, tuple[str, ...]] = {
    "entities": (),
    "home": (),
    "locking": ("durable_files",),
    # Locks and the QBO budget shared across hosts (PostgreSQL) when configured; files otherwise.
    "coordination": ("locking", "home", "durable_files"),
    "durable_files": (),
    # JSON text in and out, fast and byte-for-byte the standard library's (the client and the apply).
    "json_text": (),
    # The allocator policy the package applies when imported.
    "process_memory": (),
    # Fewer garbage-collector passes while a backfill decodes pages.
    "garbage_collection": (),
    "qbo": ("entities", "home", "durable_files", "coordination", "json_text"),
    "sandbox": ("entities", "durable_files"),
    "mirror": ("entities", "home", "locking", "durable_files", "coordination", "json_text"),
    "inbox": ("qbo.webhooks", "home", "entities"),
    "sync": ("qbo", "mirror", "entities", "home", "locking", "durable_files", "coordination", "garbage_collection"),
    "smart": ("sync", "mirror", "entities", "home", "locking", "qbo.errors", "qbo.credentials"),
    "services": ("smart.sync_service",),
    "orchestrators": ("services",),
    "fleet": ("entities",),
    # The HTTP entry point: everything below it, plus the Dagster partition it adds when a company is
    # onboarded; never the CLI or the rest of the Dagster definitions.
    "api": (
        "orchestrators",
        "services",
        "smart",
        "sync",
        "mirror",
        "inbox",
        "qbo",
        "entities",
        "home",
        "locking",
        "defs.partitions",
    ),
}
# Modules that may import a forbidden package inside a function (never at module level), so importing
# the module never loads it: the Dagster trail of syncs run outside Dagster.
LAZY: dict[str, tuple[str, ...]] = {"smart/materialization.py": ("dagster",)}
# Third-party modules a layer must never import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "entities": ("duckdb", "pandas", "pyarrow", "requests", "dagster"),
    "qbo": ("duckdb", "pandas", "pyarrow", "dagster"),
    "sandbox": ("duckdb", "pandas", "pyarrow", "requests", "dagster"),
    "mirror": ("requests", "dagster"),
    "sync": ("dagster",),
    "smart": ("dagster",),
    "services": ("duckdb", "pyarrow", "requests", "urllib3", "dagster"),
    "orchestrators": ("duckdb", "pyarrow", "requests", "urllib3", "dagster", "pandas"),
    "fleet": ("duckdb", "pyarrow", "requests", "urllib3", "dagster", "pandas"),
    "coordination": ("duckdb", "pandas", "pyarrow", "requests", "dagster"),
    "api": ("duckdb", "dagster", "pyarrow"),  # reads go through the reader and snapshot faces only
}


def _imports(path: Path, *, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in tree.body if module_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer_of(path)
        if layer in ALLOWED:
            yield pytest.param(path, layer, id=str(path.relative_to(PACKAGE)))


@pytest.mark.parametrize(("path", "layer"), list(_modules()))
def test_module_imports_only_layers_below(path: Path, layer: str) -> None:
    bad = []
    for name in _imports(path):
        if name.startswith("smartsync_pipeline."):
            target = name.removeprefix("smartsync_pipeline.")
            if target.split(".")[0] == layer:
                continue
            # `from smartsync_pipeline.x import y` yields both "x" and "x.y": judge the most specific.
            if not any(target == a or target.startswith(a + ".") for a in ALLOWED[layer]):
                if not any(other.startswith(name + ".") for other in _imports(path)):
                    bad.append(name)
        elif name.split(".")[0] in FORBIDDEN.get(layer, ()):
            lazy = LAZY.get(str(path.relative_to(PACKAGE)), ())
            if name.split(".")[0] not in lazy or name in _imports(path, module_level_only=True):
                bad.append(name)
    assert not bad, f"{path.relative_to(PACKAGE)} ({layer}) imports {sorted(bad)}"


def test_contract_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself can fail: a services module importing duckdb is reported."""
    fake = tmp_path / "bad.py"
    fake.write_text("import duckdb\nfrom smartsync_pipeline.mirror.database import MirrorDatabase\n")
    found = _imports(fake)
    assert "duckdb" in found and "smartsync_pipeline.mirror.database" in found
    assert not any(n.removeprefix("smartsync_pipeline.").startswith(a) for n in found for a in ALLOWED["services"])


def test_every_layer_is_covered() -> None:
    top = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if not p.name.startswith("__")}
    top -= {"cli", "defs", "definitions", "__pycache__"}
    assert top <= set(ALLOWED), f"layers without a contract: {sorted(top - set(ALLOWED))}"


def test_the_read_path_loads_no_dagster() -> None:
    """Importing the services, the orchestrator and the SmartReader (and building a reader) leaves no
    Dagster module loaded: apps that only want answers do not pay for it (fails before: SmartReader was a
    ConfigurableResource)."""
    code = (
        "import sys\n"
        "import smartsync_pipeline.services, smartsync_pipeline.orchestrators.digest\n"
        "from smartsync_pipeline.smart.reader import SmartReader\n"
        "from smartsync_pipeline.smart.materialization import DagsterTrail\n"
        "SmartReader('/nonexistent-home').close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster' or m.startswith('dagster_')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout[:500]
