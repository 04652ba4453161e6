"""JMAP (RFC 8620 core) on Starlette.

Mounting it in the node is one line::

    routes = jmap_routes(directory, JmapSettings.from_settings(config.jmap),
                         core_registry(limits))

Layout: ``request`` (Request/Response, sans-IO), ``pointer`` and ``references`` (result
references), ``api`` (running the calls), ``methods`` (the Method seam and the registry),
``args`` and ``query`` (helpers the standard methods share), ``errors`` (every error type),
``session``, ``auth``, ``limits``, ``routes`` (HTTP)."""

from .methods import CORE, Account, Capability, CallContext, Limits, Method, Registry
from .routes import core_registry, jmap_routes
from .settings import JmapSettings

__all__ = ["CORE", "Account", "CallContext", "Capability", "JmapSettings", "Limits", "Method",
           "Registry", "core_registry", "jmap_routes"]
