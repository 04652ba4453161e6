"""The services a node serves, in start order: each a ``module:function`` that builds
the service from the node's parts (a :data:`server.node.service.ServiceFactory`;
None when the config enables none of its listeners).  Adding a protocol is one line
here; the node, the worker pool and the worker entry know no protocol."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from server.node.service import ServiceFactory

if TYPE_CHECKING:
    from server.node.parts import NodeParts

SERVICES: tuple[str, ...] = (
    "server.smtp.service:build",
    "server.smtp.lmtp.listener:build",
    "server.imap.service:build",
    "server.outbound.service:build",
    "server.jmap.push.service:build",
)

# The HTTP routes of the node's packages (JMAP, /crypto), served by every process of the
# node: each a ``module:function`` that takes the node's parts and returns a sequence
# of Starlette routes (:data:`RoutesFactory`).
HTTP_ROUTES: tuple[str, ...] = (
    "server.jmap.node:routes",
)

RoutesFactory = Callable[["NodeParts"], Sequence[BaseRoute]]


def _load(name: str) -> Any:
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def factories(names: tuple[str, ...] = SERVICES) -> list[ServiceFactory]:
    return [_load(name) for name in names]


def http_routes(parts: NodeParts, names: tuple[str, ...] = HTTP_ROUTES) -> list[BaseRoute]:
    """Every registered package's routes, in registration order."""
    return [route for name in names for route in _load(name)(parts)]
