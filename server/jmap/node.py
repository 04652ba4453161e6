"""JMAP as the node mounts it (``server.node.services.HTTP_ROUTES``): the core and mail
capabilities and their methods over the node's directory and store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from . import email, mailbox
from .download import Downloads
from .email_parse import EmailParse
from .snippet import SearchSnippetGet
from .email_copy import EmailCopy
from .email_import import EmailImport
from .email_set import EmailSet
from .identity import IdentityChanges, IdentityGet, IdentitySet, submission_capability
from .quota import QuotaChanges, QuotaGet, QuotaQuery, QuotaQueryChanges, quota_capability
from .blob import BlobCopy, BlobGet, BlobLookup, BlobUpload, blob_capability
from .email import EmailChanges, EmailGet, EmailQuery, ThreadChanges, ThreadGet
from .mail import EMAIL_SORTS, MailStore, QueryChanges, mail_capability
from .mailbox import MailboxChanges, MailboxGet, MailboxQuery
from .mailbox_set import MailboxSet
from .routes import HttpRoute, WsRoute, core_registry, jmap_routes
from .settings import JmapSettings
from .upload import Upload
from .push import EventSource, PushSettings
from .push.delivery import Pusher
from .push.eventsource import Connections
from .push.subscriptions import PushSubscriptionGet, PushSubscriptionSet
from .push.websocket import WebSocketEndpoint, websocket_capability

if TYPE_CHECKING:
    from server.node.parts import NodeParts


def routes(parts: NodeParts) -> list[BaseRoute]:
    settings = JmapSettings.from_settings(parts.config.jmap)
    registry = core_registry(settings.limits)
    registry.add_capability(mail_capability(settings.limits.max_size_upload))
    store = MailStore(parts.engine)
    for method in (MailboxGet(store), MailboxChanges(store), MailboxQuery(store), MailboxSet(store),
                   EmailGet(store, parts.blobs), EmailChanges(store),
                   EmailQuery(store, parts.blobs),
                   ThreadGet(store), ThreadChanges(store),
                   QueryChanges("Mailbox/queryChanges", mailbox.check_condition, mailbox.SORTS,
                                ("sortAsTree", "filterAsTree")),
                   QueryChanges("Email/queryChanges", email.check_condition, EMAIL_SORTS,
                                ("collapseThreads",))):
        registry.add(method)
    registry.add(EmailParse(store, parts.blobs))
    registry.add(SearchSnippetGet(store, parts.blobs))
    registry.add_capability(blob_capability(settings.limits.max_size_upload))
    for blob_method in (BlobCopy(store), BlobGet(store, parts.blobs), BlobLookup(store),
                        BlobUpload(store, parts.blobs,
                                   max_size=settings.limits.max_size_upload)):
        registry.add(blob_method)
    registry.add(EmailImport(store, parts.delivery))
    registry.add(EmailCopy(store, parts.delivery))
    registry.add(EmailSet(store, parts.delivery, parts.blobs,
                          max_attachments=settings.limits.max_size_upload))
    registry.add_capability(quota_capability())
    for quota_method in (QuotaGet(store), QuotaChanges(store), QuotaQuery(store),
                         QuotaQueryChanges()):
        registry.add(quota_method)
    registry.add_capability(submission_capability())
    for identity_method in (IdentityGet(store), IdentityChanges(store),
                            IdentitySet(store)):
        registry.add(identity_method)
    push = PushSettings.from_settings(parts.config.jmap)
    pusher = Pusher(push)
    registry.add(PushSubscriptionGet(store, push, pusher))
    registry.add(PushSubscriptionSet(store, push, pusher))
    registry.add_capability(websocket_capability())
    connections = Connections(push.max_connections)
    push_routes: list[HttpRoute | WsRoute] = [EventSource(store, push, connections).route(),
                   WebSocketEndpoint(store, connections,
                                     settings.limits.max_size_request).route()]
    upload = Upload(parts.engine, parts.blobs, max_size=settings.limits.max_size_upload,
                    max_concurrent=settings.limits.max_concurrent_upload)
    return jmap_routes(parts.directory, settings, registry,
                       extra=[upload.route(), Downloads(store, parts.blobs).endpoint(),
                              *push_routes])
