"""JMAP as the node mounts it (``server.node.services.HTTP_ROUTES``): the core and mail
capabilities and their methods over the node's directory and store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from server.config import ServerSettings

from . import submission, vacation
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
from .mail import MailStore, mail_capability
from .mailbox import MailboxChanges, MailboxGet, MailboxQuery
from .mailbox_set import MailboxSet
from .query_changes import EmailQueryChanges, MailboxQueryChanges
from .routes import HttpRoute, WsRoute, core_registry, jmap_routes
from .settings import JmapSettings
from .upload import Upload
from .tokens import TokenEndpoints
from server.directory.apppasswords import AppPasswords
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
    mailbox_query, email_query = MailboxQuery(store), EmailQuery(store, parts.blobs)
    for method in (MailboxGet(store), MailboxChanges(store), mailbox_query, MailboxSet(store),
                   EmailGet(store, parts.blobs), EmailChanges(store),
                   email_query,
                   ThreadGet(store), ThreadChanges(store),
                   MailboxQueryChanges(store, mailbox_query),
                   EmailQueryChanges(store, email_query)):
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
    email_set = EmailSet(store, parts.delivery, parts.blobs,
                         max_attachments=settings.limits.max_size_upload)
    registry.add(email_set)
    registry.add_capability(quota_capability())
    for quota_method in (QuotaGet(store), QuotaChanges(store), QuotaQuery(store),
                         QuotaQueryChanges()):
        registry.add(quota_method)
    max_size = int(parts.config.smtp.max_message_size)
    registry.add_capability(submission_capability(submission.extensions(max_size)))
    for identity_method in (IdentityGet(store), IdentityChanges(store),
                            IdentitySet(store)):
        registry.add(identity_method)
    for submission_method in (
            submission.EmailSubmissionGet(store), submission.EmailSubmissionChanges(store),
            submission.EmailSubmissionQuery(store),
            submission.EmailSubmissionQueryChanges(store),
            submission.EmailSubmissionSet(
                store, parts.blobs, parts.directory, parts.delivery, parts.outbox,
                email_set, hostname=parts.config.get(ServerSettings).hostname,
                max_size=max_size)):
        registry.add(submission_method)
    registry.add_capability(vacation.vacation_capability())
    registry.add(vacation.VacationResponseGet(store))
    registry.add(vacation.VacationResponseSet(store))
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
    # app passwords: bearer tokens, managed at /auth/tokens (NodeParts wraps the directory)
    passwords = parts.directory if isinstance(parts.directory, AppPasswords) else None
    token_routes = TokenEndpoints(passwords).routes() if passwords is not None else []
    return jmap_routes(parts.directory, settings, registry, tokens=passwords,
                       extra=[upload.route(), Downloads(store, parts.blobs).endpoint(),
                              *token_routes, *push_routes])
