"""The services a node serves, in start order: each a ``module:function`` that builds
the service from the node's parts (a :data:`server.node.service.ServiceFactory`;
None when the config enables none of its listeners).  Adding a protocol is one line
here; the node, the worker pool and the worker entry know no protocol."""

from __future__ import annotations

import importlib

from server.node.service import ServiceFactory

SERVICES: tuple[str, ...] = (
    "server.smtp.service:build",
)


def factories(names: tuple[str, ...] = SERVICES) -> list[ServiceFactory]:
    found = []
    for name in names:
        module, _, function = name.partition(":")
        found.append(getattr(importlib.import_module(module), function))
    return found
