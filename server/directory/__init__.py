"""The directory: accounts, passwords, groups, aliases and domains, read from SQL or LDAP at
request time.  Other packages use :func:`open_directory` and the :class:`Directory` protocol
only::

    directory = await open_directory(config)
    principal = await directory.authenticate(login, secret)      # None: bad login/password
    recipients = await directory.resolve_recipient("user+tag@example.com")   # [] = no such
    ...
    await directory.close()

Every method may raise :class:`DirectoryError` when the directory cannot answer (server down,
broken query): report it as a temporary failure (SMTP 451, IMAP NO [UNAVAILABLE]), never as a
bad password or an unknown recipient.  ``Principal.id`` is the account key for the store.
"""

from __future__ import annotations

from server.config import Config

from .base import Directory, DirectoryError, Principal, PrincipalType
from .cache import CachedDirectory
from .metrics import InstrumentedDirectory
from .settings import DirectorySettings

__all__ = ["Directory", "DirectoryError", "Principal", "PrincipalType", "open_directory"]


async def open_directory(config: Config) -> Directory:
    """The directory the ``[directory]`` section configures, instrumented and (unless
    ``cache_ttl`` is 0) behind a short-lived cache."""
    settings = config.get(DirectorySettings)
    backend: Directory
    if settings.type == "ldap":
        from .ldap import LdapDirectory
        backend = LdapDirectory(settings)
    else:
        from .sql import SqlDirectory
        backend = SqlDirectory(settings, config.data_dir)
    directory: Directory = InstrumentedDirectory(backend, str(settings.type))
    ttl = float(settings.cache_ttl)
    if ttl > 0:
        directory = CachedDirectory(directory, ttl, int(settings.cache_size))
    return directory
