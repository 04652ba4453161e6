"""The ``[jmap]`` settings: the limits a JMAP session advertises (RFC 8620 section 2,
``urn:ietf:params:jmap:core``) and enforces, the public base URL and authentication."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from server.config import Section, Setting, SettingValue

from .methods import Limits, limits_from_settings

SECTION = Section(
    "jmap",
    "JMAP (RFC 8620) over the node's HTTP listener: the session resource at "
    "/.well-known/jmap and the API at /jmap/api.",
    (
        Setting("public_url", "", "Base URL clients reach JMAP at (for example "
                "https://mail.example.com), used for the session's apiUrl, downloadUrl, "
                "uploadUrl and eventSourceUrl; empty means the scheme and Host of each "
                "request."),
        Setting("auth_require_tls", True, "Accept credentials only over HTTPS (a request "
                "whose URL scheme is https); over plain HTTP they get 403. Turn off only for "
                "tests on a trusted network, or behind a proxy that terminates TLS on a "
                "trusted network."),
        Setting("auth_failures", 10, "Failed logins one client IP may make within "
                "auth_failure_window before it gets 429 for the rest of the window.",
                minimum=1),
        Setting("auth_failure_window", 300.0, "Seconds over which auth_failures counts.",
                minimum=1),
        Setting("max_size_upload", 50_000_000, "maxSizeUpload: largest upload in octets.",
                minimum=1),
        Setting("max_concurrent_upload", 4, "maxConcurrentUpload: uploads one account may "
                "run at once.", minimum=1),
        Setting("max_size_request", 10_000_000, "maxSizeRequest: largest API request body "
                "in octets, enforced while reading it.", minimum=1024),
        Setting("max_concurrent_requests", 4, "maxConcurrentRequests: API requests one "
                "account may have in progress at once on a node process.", minimum=1),
        Setting("max_calls_in_request", 32, "maxCallsInRequest: method calls in one API "
                "request.", minimum=1),
        Setting("max_objects_in_get", 500, "maxObjectsInGet: ids one /get call may ask for.",
                minimum=1),
        Setting("max_objects_in_set", 500, "maxObjectsInSet: creates, updates and destroys "
                "one /set call may hold together.", minimum=1),
        Setting("push_max_connections", 8, "Push connections (EventSource and WebSocket) "
                "one account may hold open at once on a node process; more get 429.",
                minimum=1),
        Setting("push_ping_min", 5, "Smallest EventSource ping interval in seconds: a "
                "smaller ping=... is raised to it (RFC 8620 section 7.3 lets the server "
                "clamp it).", minimum=1),
        Setting("push_allowed_hosts", ["*"], "Hosts (names or IP addresses) a "
                "PushSubscription url may name; \"*\" allows any other host too, except "
                "localhost and loopback, private and link-local addresses (list those by "
                "name to allow them). Only http and https URLs are accepted."),
        Setting("push_attempts", 5, "Attempts to deliver one push to a PushSubscription "
                "url before it is given up (the next change is tried again).", minimum=1),
        Setting("push_retry_delay", 2.0, "Seconds before the first retry of a failed push; "
                "each further retry waits twice as long.", minimum=0.01),
    ),
)


@dataclass(frozen=True, slots=True)
class JmapSettings:
    limits: Limits
    public_url: str
    auth_require_tls: bool
    auth_failures: int
    auth_failure_window: float

    @classmethod
    def from_settings(cls, values: Mapping[str, SettingValue]) -> JmapSettings:
        """From the ``[jmap]`` section (``config.jmap``)."""
        public_url, require_tls = values["public_url"], values["auth_require_tls"]
        failures, window = values["auth_failures"], values["auth_failure_window"]
        assert isinstance(public_url, str) and isinstance(require_tls, bool)
        assert isinstance(failures, int) and isinstance(window, int | float)
        return cls(limits_from_settings(values), public_url.rstrip("/"), require_tls,
                   failures, float(window))
