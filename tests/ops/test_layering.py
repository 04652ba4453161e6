"""DESIGN.md's layering, checked on the import statements of the whole tree (the AST,
not the text, so multi-line and function-level imports count):

- only ``fdb_layers`` imports the FoundationDB binding or builds keys (``fdb_layers.keys``);
  ``sqlite3`` is the metadata store's engine there, and elsewhere only the files that keep
  their own SQLite file (the blob pack file, the SQL directory);
- ``fdb_layers`` and ``mailtext`` import nothing from ``server``;
- protocol packages do not import each other (shared needs live in their own package);
- the protocols and the delivery pipeline reach the store through the mail layer's API,
  never an engine (engines and their errors stay inside fdb_layers);
- nothing imports a private name (``_x``) of another module of ours.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("server", "fdb_layers", "mailtext")

# Each protocol's package; LMTP lives with SMTP, its dialect (RFC 2033).
PROTOCOLS = ("server.smtp", "server.imap", "server.jmap", "server.sieve",
             "server.managesieve", "server.outbound")
# Files outside fdb_layers that keep a SQLite file of their own (not the metadata store).
OWN_SQLITE_FILES = ("server/blobs/pack.py", "server/directory/")


@dataclass(frozen=True, slots=True)
class Import:
    path: str          # file, relative to the repository root
    module: str        # the importing module's dotted name
    target: str        # the imported module's dotted name (resolved when relative)
    names: tuple[str, ...]  # names taken with "from ... import"
    line: int

    def __str__(self) -> str:
        what = f"from {self.target} import {', '.join(self.names)}" if self.names \
            else f"import {self.target}"
        return f"{self.path}:{self.line}: {what}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[Import]:
    rel = str(path.relative_to(ROOT))
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=rel)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel, module, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = tuple(a.name for a in node.names)
            if not node.module and node.level:  # "from . import x": x may be a module
                for name in names:
                    yield Import(rel, module, f"{target}.{name}", (), node.lineno)
            else:
                yield Import(rel, module, target, names, node.lineno)


def all_imports() -> list[Import]:
    found: list[Import] = []
    for top in TOP:
        for path in sorted((ROOT / top).rglob("*.py")):
            found.extend(imports_of(path))
    return found


IMPORTS = all_imports()


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_scan_sees_the_tree() -> None:
    """The rules below check something: the scan finds the imports we know exist."""
    assert any(i.module == "server.smtp.session" and within(i.target, "aiosmtpd")
               for i in IMPORTS)
    assert any(within(i.module, "fdb_layers") and i.target == "fdb" for i in IMPORTS)


def test_only_the_layers_touch_the_binding_and_the_keys() -> None:
    bad = [str(i) for i in IMPORTS
           if (within(i.target, "fdb") or within(i.target, "fdb_layers.keys"))
           and not within(i.module, "fdb_layers")]
    assert bad == []


def test_sqlite3_is_the_store_engine_or_a_file_of_its_own() -> None:
    bad = [str(i) for i in IMPORTS
           if i.target == "sqlite3" and not within(i.module, "fdb_layers")
           and not i.path.startswith(OWN_SQLITE_FILES)]
    assert bad == []


@pytest.mark.parametrize("lower", ["fdb_layers", "mailtext"])
def test_lower_layers_do_not_import_the_server(lower: str) -> None:
    bad = [str(i) for i in IMPORTS if within(i.module, lower) and within(i.target, "server")]
    assert bad == []


def test_protocol_packages_do_not_import_each_other() -> None:
    bad = []
    for i in IMPORTS:
        for proto in PROTOCOLS:
            if within(i.module, proto):
                others = [p for p in PROTOCOLS if p != proto and within(i.target, p)]
                bad.extend(f"{i}  ({proto} -> {p})" for p in others)
    assert bad == []


def in_tree(module: str) -> bool:
    return any(within(module, top) for top in TOP)


def test_no_private_name_is_imported_from_another_module() -> None:
    """Neither a private name nor anything of a private module (``_x.py``) of ours.
    Third-party private names are pinned and checked where they are used."""
    bad = []
    for i in IMPORTS:
        if not in_tree(i.target) or i.target == i.module:
            continue
        parts = i.target.split(".") + list(i.names)
        if any(p.startswith("_") and not (p.startswith("__") and p.endswith("__"))
               for p in parts):
            bad.append(str(i))
    assert bad == []


# Packages that serve users: they reach the store through fdb_layers.mail (or
# fdb_layers.blobs), never an engine; the node's composition root opens the engine.
SERVING = ("server.delivery", *PROTOCOLS)


def test_protocols_and_delivery_do_not_reach_the_engines() -> None:
    bad = []
    for i in IMPORTS:
        if not any(within(i.module, p) for p in SERVING):
            continue
        targets = [f"{i.target}.{n}" for n in i.names] if i.names else [i.target]
        bad.extend(f"{i}" for t in targets
                   if within(t, "fdb") or within(t, "fdb_layers.engine"))
    assert bad == []
