"""THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES, as the RFC writes
them.  Subjects compare by their base subject (RFC 5256 §2.1) in the comparison form JMAP
threading uses too (:mod:`mailtext.subjects`); dates are sent dates (§2.2); Message-IDs are
normalised by the mail layer's ``normalise_message_id``.  Trees are walked without recursion:
a reply chain can be deeper than Python's stack."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from fdb_layers.mail import normalise_message_id
from server.imap.wire import commands as c
from server.imap.wire.responses import ThreadData, ThreadNode
from server.mime.subjects import base_subject

from .search import SUMMARY, Candidate, check_charset, run_search
from .sort import sent_time
from .state import Session

__all__ = ["ordered_subject", "references", "thread"]

# subj-refwd or subj-fwd-hdr at the start, after blobs (RFC 5256 §5): a reply or forward
_REPLY = re.compile(r"\s*(?:\[[^\[\]]*\]\s*)*(?:(?:re|fwd?)\s*(?:\[[^\[\]]*\])?\s*:|\[fwd:)",
                    re.IGNORECASE)


def _subject(cand: Candidate) -> str:
    summary = cand.summary
    return (summary.envelope.decoded_subject or "") if summary is not None else ""


def _date(cand: Candidate) -> tuple[float, int]:
    return sent_time(cand), cand.seq


def ordered_subject(found: list[Candidate]) -> list[ThreadNode]:
    """ORDEREDSUBJECT (RFC 5256 §3): by base subject then sent date; the first message of each
    subject is the parent of the others; threads by the sent date of their first message."""
    groups: dict[str, list[Candidate]] = {}
    for cand in sorted(found, key=_date):
        groups.setdefault(base_subject(_subject(cand)), []).append(cand)
    threads = sorted(groups.values(), key=lambda g: _date(g[0]))
    return [ThreadNode(g[0].seq, tuple(ThreadNode(x.seq) for x in g[1:])) for g in threads]


@dataclass(eq=False, slots=True)
class _Node:
    cand: Candidate | None  # None: a dummy (a referenced message that is not here)
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)


def _is_ancestor(a: _Node, b: _Node | None) -> bool:
    """``a`` is ``b`` or one of its ancestors."""
    while b is not None:
        if b is a:
            return True
        b = b.parent
    return False


def _unlink(node: _Node) -> None:
    if node.parent is not None:
        node.parent.children.remove(node)
        node.parent = None


def _link(parent: _Node, child: _Node) -> None:
    _unlink(child)
    child.parent = parent
    parent.children.append(child)


def _ids(cand: Candidate) -> tuple[str | None, list[str]]:
    """The message's own Message-ID and its references (References, else the first
    In-Reply-To id), normalised."""
    env = cand.summary.envelope if cand.summary is not None else None
    if env is None:
        return None, []
    own = next(iter(env.message_ids), None)
    refs = list(env.reference_ids) or list(env.in_reply_to_ids[:1])
    return (normalise_message_id(own) if own else None,
            [r for r in (normalise_message_id(x) for x in refs) if r is not None])


def _walk(roots: list[_Node]) -> Iterator[_Node]:
    """Every node, parents before their children."""
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _key(node: _Node) -> tuple[float, int]:
    """Sent date of the message, or of a dummy's first child (children sorted first)."""
    while node.cand is None:
        node = node.children[0]
    return _date(node.cand)


def _sort_all(roots: list[_Node]) -> list[_Node]:
    """RFC 5256 §3 step 7: siblings by sent date, the youngest sets first, then the roots."""
    for node in reversed(list(_walk(roots))):
        node.children.sort(key=_key)
    return sorted(roots, key=_key)


def references(found: list[Candidate]) -> list[ThreadNode]:
    """REFERENCES (RFC 5256 §3, steps 1 to 7)."""
    table: dict[str, _Node] = {}
    for cand in found:
        own, refs = _ids(cand)
        if own is None or (own in table and table[own].cand is not None):
            own = f"\0{cand.seq}"  # none, or a duplicate: a unique id (step 1)
        node = table.setdefault(own, _Node(None))
        node.cand = cand
        prev: _Node | None = None
        for ref in refs:  # step 1.A / 1.B
            ref_node = table.setdefault(ref, _Node(None))
            if prev is not None and ref_node.parent is None and not _is_ancestor(ref_node, prev):
                _link(prev, ref_node)
            prev = ref_node
        if prev is None:  # step 1.C: the last reference (or NIL) is the parent
            _unlink(node)
        elif not _is_ancestor(node, prev):
            _link(prev, node)
    roots = [n for n in table.values() if n.parent is None]  # step 2 (step 3: table dropped)

    # step 4: prune dummies, children before parents
    for node in reversed(list(_walk(roots))):
        kept: list[_Node] = []
        for child in node.children:
            kept.extend(child.children if child.cand is None else [child])
        node.children = kept
        for child in kept:
            child.parent = node
    pruned: list[_Node] = []
    for node in roots:
        if node.cand is None and len(node.children) <= 1:
            pruned.extend(node.children)  # an empty dummy goes, a single child is promoted
        else:
            pruned.append(node)
    for node in pruned:
        node.parent = None

    # step 5: the root set by sent date (a dummy's children sorted, its first child counts)
    for node in pruned:
        if node.cand is None:
            node.children.sort(key=_key)
    roots = sorted(pruned, key=_key)

    # step 6: merge threads with the same base subject
    roots = _merge_subjects(roots)
    return _render(_sort_all(roots))


def _root_subject(node: _Node) -> str:
    first = node if node.cand is not None else node.children[0]
    assert first.cand is not None
    return _subject(first.cand)


def _merge_subjects(roots: list[_Node]) -> list[_Node]:
    table: dict[str, _Node] = {}
    for node in roots:  # step 6.B
        subject = _root_subject(node)
        base = base_subject(subject)
        if not base:
            continue
        old = table.get(base)
        if old is None or (node.cand is None and old.cand is not None) or (
                old.cand is not None and node.cand is not None
                and _REPLY.match(_root_subject(old)) and not _REPLY.match(subject)):
            table[base] = node
    out: list[_Node] = []  # the new root set; its order is set by step 7
    for node in roots:  # step 6.C
        subject = _root_subject(node)
        base = base_subject(subject)
        other = table.get(base) if base else None
        if other is None or other is node:
            out.append(node)
        elif other.cand is None and node.cand is None:
            for child in list(node.children):
                _link(other, child)
        elif other.cand is None:
            _link(other, node)
        elif node.cand is None:  # (step 6.B keeps dummies in the table: not reached)
            _link(node, other)
            table[base] = node
            out.append(node)
        elif not _REPLY.match(_root_subject(other)) and _REPLY.match(subject):
            _link(other, node)
        else:
            dummy = _Node(None)
            _link(dummy, other)
            _link(dummy, node)
            table[base] = dummy
            out.append(dummy)
    seen: set[int] = set()
    result: list[_Node] = []
    for node in out:
        if node.parent is None and id(node) not in seen:
            seen.add(id(node))
            result.append(node)
    return result


def _render(roots: list[_Node]) -> list[ThreadNode]:
    built: dict[int, ThreadNode] = {}
    for node in reversed(list(_walk(roots))):
        built[id(node)] = ThreadNode(
            node.cand.seq if node.cand is not None else None,
            tuple(built[id(ch)] for ch in node.children))
    return [built[id(r)] for r in roots]


def _numbers(node: ThreadNode, uids: dict[int, int]) -> ThreadNode:
    """The same tree with UIDs instead of sequence numbers (UID THREAD)."""
    built: dict[int, ThreadNode] = {}
    order: list[ThreadNode] = []
    stack = [node]
    while stack:
        n = stack.pop()
        order.append(n)
        stack.extend(n.children)
    for n in reversed(order):
        built[id(n)] = ThreadNode(None if n.number is None else uids[n.number],
                                  tuple(built[id(ch)] for ch in n.children))
    return built[id(node)]


async def thread(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Thread)
    check_charset(cmd.charset, utf8_accept=s.utf8_accept, required=True)
    found = await run_search(s, cmd.key, need=SUMMARY)
    trees = ordered_subject(found) if cmd.algorithm == "ORDEREDSUBJECT" else references(found)
    if cmd.uid:
        uids = {x.seq: x.uid for x in found}
        trees = [_numbers(t, uids) for t in trees]
    s.write(ThreadData(tuple(trees)))
    s.ok(cmd.tag, ("UID THREAD" if cmd.uid else "THREAD") + " completed")
