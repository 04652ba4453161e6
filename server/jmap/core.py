"""The core capability (RFC 8620 section 2) and Core/echo (section 4)."""

from __future__ import annotations

from .json import JsonObject
from .methods import CORE, Capability, CallContext, Limits, Replies
from .query import COLLATIONS


def core_capability(limits: Limits) -> Capability:
    """``urn:ietf:params:jmap:core`` with the limits we enforce.  Listed per account too
    (with no properties) so that ``primaryAccounts`` names the caller's account for it."""
    session: JsonObject = {**limits.to_json(), "collationAlgorithms": list(COLLATIONS)}
    return Capability(CORE, session, {})


class Echo:
    """Core/echo: the arguments back, unchanged (section 4)."""

    name = "Core/echo"
    capability = CORE

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject | Replies:
        return args
