"""The embedded engine: FoundationDB's contract on one SQLite file.

Its parts, one concept each (imports go down this list, never up):

* :mod:`.mutations` -- what a transaction writes, FoundationDB's limits and atomic ops;
* :mod:`.conflicts` -- read and write conflict sets;
* :mod:`.storage` -- the file: schema, connections, a batch's writes;
* :mod:`.commit` -- a commit request;
* :mod:`.transaction` -- snapshot reads, buffered writes;
* :mod:`.writer` -- conflict checks and the durable group commit;
* :mod:`.watches` -- watches, fired by commits, pushes and polling;
* :mod:`.wire`, :mod:`.remote` -- other processes' commits and watches over a Unix socket;
* :mod:`.engine` -- the engine that puts them together.
"""

from .engine import SqliteEngine
from .remote import CommitServer
from .transaction import SqliteTransaction
from .watches import SqliteWatch

__all__ = ["CommitServer", "SqliteEngine", "SqliteTransaction", "SqliteWatch"]
