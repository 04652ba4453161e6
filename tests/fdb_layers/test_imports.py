"""Import rules of the layers (STYLE.md): no module imports another module's private
name, and the protocols and the delivery pipeline reach the store through the mail
layer's API only -- engines and their errors stay inside fdb_layers (the node's
composition root opens the engine)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("fdb_layers", "server", "mailtext")
# packages that serve users: they call fdb_layers.mail (or fdb_layers.blobs), never an engine
PROTOCOLS = ("delivery", "smtp", "lmtp", "imap", "jmap", "sieve", "managesieve", "outbound")


def _modules(*tops: str) -> Iterator[tuple[Path, str, ast.Module]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield path, name, ast.parse(path.read_text(), str(path))


def _imports(module: str, tree: ast.Module, is_package: bool) -> Iterator[tuple[str, str]]:
    """``(imported module, name or "")`` for each import, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ""
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")
                parent = parent[:len(parent) - node.level + (1 if is_package else 0)]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                yield base, alias.name


def test_no_private_name_is_imported_from_another_module() -> None:
    bad = []
    for path, module, tree in _modules(*OURS):
        for imported, name in _imports(module, tree, path.name == "__init__.py"):
            if not imported.startswith(OURS) or imported == module:
                continue
            private = [p for p in imported.split(".") + [name] if p.startswith("_")
                       and not (p.startswith("__") and p.endswith("__"))]
            if private:
                bad.append(f"{path.relative_to(ROOT)}: {imported} {name}".strip())
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def _is_engine(target: str) -> bool:
    return target.split(".")[0] == "fdb" or target.startswith("fdb_layers.engine")


def test_protocols_and_delivery_do_not_reach_the_engines() -> None:
    bad = []
    for path, module, tree in _modules("server"):
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in PROTOCOLS:
            continue
        for imported, name in _imports(module, tree, path.name == "__init__.py"):
            target = f"{imported}.{name}" if name else imported
            if _is_engine(target):
                bad.append(f"{path.relative_to(ROOT)}: {target}")
    assert not bad, "engine imports outside fdb_layers:\n" + "\n".join(bad)
