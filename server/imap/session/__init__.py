"""The IMAP session: the state machine (:mod:`.state`), one module per command family
(:mod:`.auth`, :mod:`.mailboxes`, :mod:`.selected`), the dispatch table
(:mod:`.dispatch`) and the one error table (:mod:`.errors`)."""

from .state import Action, Selected, Session, SessionContext, State

__all__ = ["Action", "Selected", "Session", "SessionContext", "State"]
