"""The node's composition root: what every process of a node opens once (the store, the
blob store, the directory, the delivery pipeline) and the services built on them.  A
one-process node and each worker process build the same :class:`NodeParts`; services
are then built from it by their registered factories (:mod:`server.node.services`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from fdb_layers.engine import open_engine
from fdb_layers.engine.base import Engine, LayoutVersionError
from fdb_layers.engine.run import transact
from fdb_layers.layout import check_store_layouts

from server.blobs import BlobStore, open_blob_store
from server.config import Config, ServerSettings, StoreSettings
from server.delivery import Delivery
from server.directory import Directory, open_directory
from server.directory.apppasswords import AppPasswords
from server.net.settings import TlsSettings
from server.net.tls import ServerTls
from server.node.service import Service
from server.outbound.outbox import Outbox
from server.mailauth.dkim_keys import KeyCache
from server.mailauth.settings import MailauthSettings
from server.mailauth.sign import Signer
from server.outbound.vacation import VacationResponder
from server.node.services import SERVICES, factories
from server.sasl.limits import FailureLog

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The node cannot start; the message says why and what to do."""


def store_path(config: Config) -> str:
    return config.get(StoreSettings).sqlite_path or str(config.data_dir / "store.sqlite3")


async def open_store(config: Config, *, commit_socket: str | None = None) -> Engine:
    """The configured store, its layout checked.  ``commit_socket``: a worker's
    embedded store, whose commits the main process makes (see server.node.pool)."""
    store = config.get(StoreSettings)
    path = store_path(config)
    try:
        engine = await open_engine(
            store.engine,
            sqlite_path=path,
            cluster_file=store.cluster_file,
            api_version=store.fdb_api_version,
            not_committed_rate=store.fault_not_committed_rate,
            unknown_result_rate=store.fault_unknown_result_rate,
            commit_socket=commit_socket,
        )
    except Exception as e:
        from fdb_layers.engine.foundationdb import ClientLibraryError

        if isinstance(e, ClientLibraryError):
            raise StartupError(str(e)) from e
        raise
    try:
        await transact(engine, check_store_layouts)  # every layer's layout version
    except LayoutVersionError as e:
        await engine.close()
        raise StartupError(str(e)) from e
    return engine


def signer(config: Config, engine: Engine) -> Signer | None:
    """The DKIM signer of submissions, unless ``[mailauth] dkim_sign`` is off."""
    settings = config.get(MailauthSettings)
    if not settings.dkim_sign:
        return None
    return Signer(KeyCache(engine, settings.dkim_key_cache_seconds))


@dataclass(frozen=True)
class NodeParts:
    """What a process of the node shares between its services."""

    config: Config
    engine: Engine
    blobs: BlobStore
    directory: Directory
    delivery: Delivery
    tls: ServerTls
    # failed logins of every protocol of this process (SMTP AUTH, IMAP): server.sasl.limits
    auth_failures: FailureLog = field(default_factory=FailureLog)
    outbox: Outbox | None = None    # remote recipients of submissions go to the queue

    @classmethod
    async def open(cls, config: Config, *, commit_socket: str | None = None) -> NodeParts:
        t = config.get(TlsSettings)
        tls = ServerTls(t.certificate, t.key, t.reload, config.data_dir)  # checks the pair
        engine = await open_store(config, commit_socket=commit_socket)
        try:
            blobs = await open_blob_store(config)
        except BaseException:
            await engine.close()
            raise
        try:
            directory = await open_directory(config)
        except BaseException:
            await blobs.close()
            await engine.close()
            raise
        # app passwords work wherever a password does (server.directory.apppasswords)
        directory = AppPasswords(directory, engine)
        delivery = Delivery(engine, blobs)
        outbox = Outbox(engine, blobs, signer=signer(config, engine))  # DKIM: server.mailauth
        delivery.add_delivered_hook(VacationResponder(  # JMAP VacationResponse's reply
            engine, directory, delivery, outbox, config.get(ServerSettings).hostname))
        return cls(config, engine, blobs, directory, delivery, tls, outbox=outbox)

    async def build_services(self, names: tuple[str, ...] = SERVICES) -> list[Service]:
        """Every registered service the config enables, in registration order."""
        services = []
        for factory in factories(names):
            service = await factory(self)
            if service is not None:
                services.append(service)
        return services

    async def close(self) -> None:
        await self.tls.close()
        await self.directory.close()
        await self.blobs.close()
        await self.engine.close()
