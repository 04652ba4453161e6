"""The ``fs`` blob store: a local folder, the embedded default.

Layout: ``<root>/ab/<sha256>``, 256 shard folders made when the store is
created (a put never creates a folder: on ext4 a new folder costs more than the
blob), and ``<root>/tmp/`` for writes in progress, on the same filesystem so
that the final ``rename`` is atomic.  With ten million blobs a shard holds
about 40,000 names, which indexed folders (ext4, XFS) handle well; a larger
store belongs in S3.  The file ``LAYOUT`` names the layout; a folder written by
an older version (``ab/cd/<sha256>``) is flattened once when it is opened.

A put writes a temporary file, makes it durable, renames it into place and
makes the rename durable: a reader, or a node restarted after a crash, sees the
whole blob under its final name or nothing.  Two ways to make it durable
(``sync``):

* ``"file"``: fsync the temporary file, rename, fsync the folder (and a new
  shard folder's parent) -- two to four fsyncs per blob, one after another;
* ``"filesystem"`` (Linux): puts that arrive together are written as one batch:
  every temporary file, one ``syncfs(2)`` of the filesystem, every rename, one
  more ``syncfs``.  Two flushes per batch instead of two to four per blob; the
  order is the same (the data is on disk before its name is).  It also
  flushes whatever else is dirty on that filesystem, so put the folder on a
  filesystem of its own (or the store's) if other programs write a lot there.
  Where ``syncfs`` does not exist it falls back to ``"file"``.

Blobs up to ``pack_max`` bytes (most messages) are not files at all: they go
into one SQLite file beside the shards (:mod:`.pack`), a batch of puts made
durable by one fsync of its log.  Larger blobs, and every blob when
``pack_max`` is 0, are files as described above.  Where a blob lives follows
from its size; only a change of ``pack_max`` between two puts of the same bytes
leaves a copy in each place, which :meth:`FsBlobStore.list` reports once and
:meth:`FsBlobStore.delete_if_older` removes together.  Reads look in the pack
first.

Blocking I/O runs in worker threads
(``asyncio.to_thread``; the pack's writes in a thread of their own), never on
the event loop, but for one read: a range of at most ``INLINE_READ_MAX`` bytes of
a packed blob is one indexed row read of a WAL-mode SQLite file (readers never
wait for its writer), as cheap as the embedded metadata engine's reads, which
run on the loop too; a thread hand-off costs more than the read (~1 ms on a
busy machine against ~30 us).  Temporary files left by a
crash are removed when the store is opened (those older than a day), and a
blob a crashed GC was checking is put back.
"""

from __future__ import annotations

import asyncio
import builtins
import ctypes
import errno
import functools
import hashlib
import itertools
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Literal, TypeVar

from .base import BlobCapabilities, BlobNotFound, BlobRef, check_blob_id, check_range
from .pack import FILE_NAME as PACK_FILE
from .pack import BlobPack

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 256 * 1024
DEFAULT_PACK_MAX = 256 * 1024
_LIST_PAGE = 1000
INLINE_READ_MAX = 64 * 1024  # a pack read this small runs on the event loop
_RELEASE_PAGES = 1024  # pack pages freed per turn (4 MiB of 4 KiB pages)
_STALE_TEMP_SECONDS = 24 * 3600
_HEX = "0123456789abcdef"
_LAYOUT_FILE = "LAYOUT"
_LAYOUT = "fdbmail-blobs 3: ab/<sha256>, packed.sqlite3"
_LAYOUT_2 = "fdbmail-blobs 2: ab/<sha256>"  # no pack: upgraded by writing the marker
SyncMode = Literal["file", "filesystem"]
T = TypeVar("T")


class FsBlobStore:
    """Blobs as files under ``root``; see the module docstring."""

    backend = "fs"
    capabilities = BlobCapabilities(atomic_delete_if_older=True, releases_space=True)

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True,
                 sync: SyncMode = "filesystem",
                 chunk_size: int = DEFAULT_CHUNK_SIZE,
                 pack_max: int = DEFAULT_PACK_MAX) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.fsync = fsync
        self.chunk_size = chunk_size
        self.pack_max = max(0, pack_max)
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        self._ensure_layout()
        self._queued: list[tuple[bytes, asyncio.Future[BlobRef]]] = []
        self._drainer: asyncio.Task[None] | None = None
        # The pack is opened whatever pack_max says: blobs packed under an
        # earlier setting stay readable.
        self._pack = BlobPack(self.root / PACK_FILE, durable=fsync)
        self._pack_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-pack")
        self._pack_queued: list[tuple[bytes, asyncio.Future[BlobRef]]] = []
        self._pack_drainer: asyncio.Task[None] | None = None
        # One descriptor for the store's life: syncfs reports the write-back
        # errors seen since the previous call on the same descriptor.
        self._syncfs_fd: int | None = None
        if fsync and sync == "filesystem":
            if _syncfs is None:
                log.info("syncfs is not available here: blob puts fsync each file")
            else:
                self._syncfs_fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    @classmethod
    async def create(cls, root: str | os.PathLike[str], *, fsync: bool = True,
                     sync: SyncMode = "filesystem",
                     chunk_size: int = DEFAULT_CHUNK_SIZE,
                     pack_max: int = DEFAULT_PACK_MAX) -> FsBlobStore:
        store = await asyncio.to_thread(cls, root, fsync=fsync, sync=sync, chunk_size=chunk_size,
                                        pack_max=pack_max)
        await asyncio.to_thread(store._recover_temps, time.time() - _STALE_TEMP_SECONDS)
        return store

    @property
    def sync_mode(self) -> SyncMode | None:
        """How puts are made durable; None: they are not (``fsync=False``)."""
        if not self.fsync:
            return None
        return "file" if self._syncfs_fd is None else "filesystem"

    def path(self, blob_id: str) -> Path:
        check_blob_id(blob_id)
        return self.root / blob_id[:2] / blob_id

    def _ensure_layout(self) -> None:
        marker = self.root / _LAYOUT_FILE
        try:
            layout = marker.read_text().strip()
        except FileNotFoundError:
            layout = ""
        if layout == _LAYOUT:
            return
        if layout == _LAYOUT_2:  # same folders; the pack is created when opened
            self._write_layout()
            return
        if layout:
            raise RuntimeError(f"{self.root}: unknown blob folder layout {layout!r}")
        flattened = 0
        for top in _HEX_PAIRS:
            shard = self.root / top
            shard.mkdir(exist_ok=True)
            flattened += self._flatten(shard)
            if self.fsync:
                _fsync_dir(shard)
        if flattened:
            log.info("moved the blobs of %d folders of the old layout (ab/cd/<id>) up to "
                     "ab/<id> in %s", flattened, self.root)
        if self.fsync:
            _fsync_dir(self.root)
        self._write_layout()

    def _write_layout(self) -> None:
        marker = self.root / _LAYOUT_FILE
        tmp_marker = self.tmp / f"{_LAYOUT_FILE}.{uuid.uuid4().hex}"
        with open(tmp_marker, "x") as f:
            f.write(_LAYOUT + "\n")
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        os.replace(tmp_marker, marker)
        if self.fsync:
            _fsync_dir(self.root)

    def _flatten(self, shard: Path) -> int:
        """Move blobs of the old two-level layout (``ab/cd/<id>``) up to ``ab/<id>``;
        how many folders were emptied.  Another process doing the same at the same
        time is harmless: what it moved first is simply gone here."""
        emptied = 0
        for sub in os.scandir(shard):
            if not (len(sub.name) == 2 and _is_hex(sub.name) and sub.is_dir()):
                continue
            try:
                entries = list(os.scandir(sub.path))
            except FileNotFoundError:
                continue
            for entry in entries:
                if len(entry.name) == 64 and _is_hex(entry.name):
                    try:
                        os.replace(entry.path, shard / entry.name)
                    except FileNotFoundError:
                        continue
            if self.fsync:
                _fsync_dir(shard)
            try:
                os.rmdir(sub.path)
            except FileNotFoundError:
                continue
            except OSError:  # something else lives there: leave it
                log.warning("left %s in place: it holds files that are not blobs", sub.path)
            else:
                emptied += 1
        return emptied

    # -- writes ---------------------------------------------------------------

    async def put(self, data: bytes) -> BlobRef:
        """Puts that arrive together go to one worker thread in one hand-off
        (a thread hand-off costs more CPU than a small blob's write) and, with
        ``sync="filesystem"``, share its two flushes; none returns before its
        blob is durable under its final name."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[BlobRef] = loop.create_future()
        if len(data) <= self.pack_max:
            self._pack_queued.append((bytes(data), future))
            if self._pack_drainer is None or self._pack_drainer.done():
                self._pack_drainer = loop.create_task(self._drain_pack_puts())
            return await future
        self._queued.append((bytes(data), future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain_puts())
        return await future

    async def _drain_pack_puts(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pack_queued:
            batch, self._pack_queued = self._pack_queued, []
            try:
                refs = await loop.run_in_executor(
                    self._pack_thread, self._put_packed, [d for d, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as e:  # nothing of the batch was stored
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), ref in zip(batch, refs, strict=True):
                if not future.done():
                    future.set_result(ref)

    def _put_packed(self, blobs: list[bytes]) -> list[BlobRef]:
        """Pack writer thread: one transaction for the batch (see :mod:`.pack`)."""
        rows = [(hashlib.sha256(data).digest(), data) for data in blobs]
        self._pack.put_many(rows, time.time())
        return [BlobRef(digest.hex(), len(data)) for digest, data in rows]

    async def _drain_puts(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                results = await asyncio.to_thread(self._put_many, [d for d, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as e:  # no worker thread (shutting down): the callers get it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _put_many(self, blobs: list[bytes]) -> list[BlobRef | BaseException]:
        if self._syncfs_fd is not None:
            return self._put_many_syncfs(blobs)
        out: list[BlobRef | BaseException] = []
        for data in blobs:
            try:
                out.append(self._put_bytes(data))
            except Exception as e:  # handed to that put's caller
                out.append(e)
        return out

    def _put_many_syncfs(self, blobs: list[bytes]) -> list[BlobRef | BaseException]:
        """Write every temporary file, flush, rename them all, flush again.

        The first flush puts the data on disk before any name refers to it;
        the second makes the renames (and new shard folders) durable.  A blob
        already there is only touched, but still waits for the second flush:
        the batch that put it may not have flushed its rename yet."""
        out: list[BlobRef | BaseException] = []
        staged: list[tuple[int, Path, str]] = []  # (index in out, temp file, blob id)
        for i, data in enumerate(blobs):
            blob_id = hashlib.sha256(data).hexdigest()
            out.append(BlobRef(blob_id, len(data)))
            try:
                if self._refresh(blob_id):
                    continue
                staged.append((i, self._write_temp(data), blob_id))
            except Exception as e:  # handed to that put's caller
                out[i] = e
        if staged:
            try:
                self._flush_filesystem()
            except Exception as e:
                for i, tmp_path, _ in staged:
                    tmp_path.unlink(missing_ok=True)
                    out[i] = e
                staged = []
        for i, tmp_path, blob_id in staged:
            try:
                self._rename_into_shard(tmp_path, self.path(blob_id), sync=False)
            except Exception as e:
                tmp_path.unlink(missing_ok=True)
                out[i] = e
        try:
            self._flush_filesystem()
        except Exception as e:  # renamed, data durable: a retried put finds it
            out = [e for _ in out]
        return out

    def _flush_filesystem(self) -> None:
        assert _syncfs is not None and self._syncfs_fd is not None
        if _syncfs(self._syncfs_fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs of {self.root}: {os.strerror(code)}")

    async def put_stream(self, chunks: AsyncIterable[bytes]) -> BlobRef:
        f, tmp_path = await asyncio.to_thread(self._create_temp)
        hasher = hashlib.sha256()
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                pending.append(bytes(chunk))
                pending_size += len(chunk)
                size += len(chunk)
                if pending_size >= self.chunk_size:
                    batch, pending, pending_size = pending, [], 0
                    await asyncio.to_thread(_write_hashed, f, hasher, batch)
            if pending:
                await asyncio.to_thread(_write_hashed, f, hasher, pending)
            pending = []
            blob_id = hasher.hexdigest()
            if size <= self.pack_max:  # small after all: it belongs in the pack
                data = await asyncio.to_thread(_read_back, f, tmp_path)
                return await self.put(data)
            await asyncio.to_thread(self._commit_temp, f, tmp_path, blob_id)
        except BaseException:
            # Synchronous on purpose: it must run even when we are cancelled.
            # A write still running in a worker holds the file's lock, so
            # close() waits for it rather than racing it.
            _discard(f, tmp_path)
            raise
        return BlobRef(blob_id, size)

    def _put_bytes(self, data: bytes) -> BlobRef:
        blob_id = hashlib.sha256(data).hexdigest()
        ref = BlobRef(blob_id, len(data))
        if self._refresh(blob_id):
            if self.fsync:  # its rename may not be durable yet (a put racing this one)
                _fsync_dir(self.path(blob_id).parent)
            return ref
        f, tmp_path = self._create_temp()
        try:
            f.write(data)
            self._commit_temp(f, tmp_path, blob_id)
        except BaseException:
            _discard(f, tmp_path)
            raise
        return ref

    def _create_temp(self) -> tuple[BinaryIO, Path]:
        tmp_path = self.tmp / f"{uuid.uuid4().hex}.tmp"
        return open(tmp_path, "xb"), tmp_path

    def _write_temp(self, data: bytes) -> Path:
        """A new temporary file holding ``data``, not synced, in three system calls
        (a batch makes many, each a hand-off of the interpreter lock)."""
        path = self.tmp / f"{_TEMP_PREFIX}{next(_temp_numbers)}.tmp"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:  # a forked child shares the prefix and the counter
            path = self.tmp / f"{uuid.uuid4().hex}.tmp"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return path

    def _commit_temp(self, f: BinaryIO, tmp_path: Path, blob_id: str) -> None:
        """fsync the temp file and rename it to the blob's name (or drop it if
        the blob is already there: same id, same bytes)."""
        if self._refresh(blob_id):  # a duplicate: its data is durable already
            f.close()
            tmp_path.unlink(missing_ok=True)
            log.debug("blob %s already stored", blob_id)
            if self.fsync:  # its rename may not be yet (a put racing this one)
                _fsync_dir(self.path(blob_id).parent)
            return
        f.flush()
        if self.fsync:
            os.fsync(f.fileno())
        f.close()
        final = self.path(blob_id)
        self._rename_into_shard(tmp_path, final)
        if self.fsync:
            _fsync_dir(final.parent)

    def _refresh(self, blob_id: str) -> bool:
        """Touch an existing blob (a put of it counts as recent for the GC)."""
        try:
            os.utime(self.path(blob_id))
        except FileNotFoundError:
            return False
        return True

    def _rename_into_shard(self, src: Path, final: Path, *, sync: bool = True) -> None:
        """Rename ``src`` to ``final``; re-create its shard folder if someone removed
        it (``sync``: and fsync that folder's entry, unless the store never syncs)."""
        try:
            os.replace(src, final)
            return
        except FileNotFoundError:
            if not src.exists():
                raise
        self._make_shard(final.parent, sync=sync)
        os.replace(src, final)

    def _make_shard(self, shard: Path, *, sync: bool = True) -> None:
        try:
            shard.mkdir()
        except FileExistsError:
            return
        if sync and self.fsync:
            _fsync_dir(shard.parent)

    async def delete(self, blob_id: str) -> None:
        path = self.path(blob_id)
        await self._in_pack_thread(self._pack.delete, bytes.fromhex(blob_id))
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def delete_if_older(self, blob_id: str, cutoff: float) -> bool:
        """Each place's copy goes if it is older than ``cutoff`` (atomically
        there); True if one went and none is left (a copy put meanwhile keeps
        the blob)."""
        digest = bytes.fromhex(check_blob_id(blob_id))
        packed = await self._in_pack_thread(self._pack.delete_if_older, digest, cutoff)
        filed = await asyncio.to_thread(self._delete_if_older, blob_id, cutoff)
        if not (packed or filed):
            return False
        return not await self.exists(blob_id)

    async def release_space(self) -> None:
        """Give the pack's free pages (left by deletes) back to the filesystem, a
        few MiB per turn of its writer thread, so that puts queued meanwhile go
        in between (moving pages holds the pack's write lock)."""
        while await self._in_pack_thread(self._pack.release_space, _RELEASE_PAGES):
            pass

    async def _in_pack_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run a write of the pack in its writer thread (one connection, one thread)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pack_thread, functools.partial(fn, *args))

    def _delete_if_older(self, blob_id: str, cutoff: float) -> bool:
        # Rename first: a concurrent put then either touched this inode before
        # the rename (we see its mtime and put it back) or finds no file and
        # writes a new one.  Either way a put that returned keeps its blob.
        final = self.path(blob_id)
        doomed = self.tmp / f"{blob_id}.{uuid.uuid4().hex}.gc"
        try:
            os.rename(final, doomed)
        except FileNotFoundError:
            return False
        if os.stat(doomed).st_mtime < cutoff:
            doomed.unlink()
            if self.fsync:
                _fsync_dir(final.parent)
            return True
        self._restore(blob_id, doomed)  # put it back unless a new put already did
        return False

    # -- reads ----------------------------------------------------------------

    async def get(self, blob_id: str) -> bytes:
        return await asyncio.to_thread(self._read, blob_id, 0, None)

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        check_range(start, end)
        if end - start <= INLINE_READ_MAX:
            packed = self._pack.read(_digest(blob_id), start, end)
            if packed is not None:
                return packed
            return await asyncio.to_thread(self._read, blob_id, start, end, pack=False)
        return await asyncio.to_thread(self._read, blob_id, start, end)

    def _read(self, blob_id: str, start: int, end: int | None, *, pack: bool = True) -> bytes:
        packed = self._pack.read(_digest(blob_id), start, end) if pack else None
        if packed is not None:
            return packed
        with self._open_file(blob_id) as f:
            if start:
                f.seek(start)
            return f.read() if end is None else f.read(max(0, end - start))

    def _open_file(self, blob_id: str) -> BinaryIO:
        try:
            return open(self.path(blob_id), "rb")
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None

    async def open(self, blob_id: str, start: int = 0,
                   end: int | None = None) -> AsyncIterator[bytes]:
        check_range(start, end)
        packed = await asyncio.to_thread(self._pack.read, _digest(blob_id), start, end)
        if packed is not None:  # at most pack_max bytes, read at once
            for i in range(0, len(packed), self.chunk_size):
                yield packed[i:i + self.chunk_size]
            return
        f = await asyncio.to_thread(self._open_file, blob_id)
        try:
            if start:
                await asyncio.to_thread(f.seek, start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                n = self.chunk_size if remaining is None else min(self.chunk_size, remaining)
                chunk = await asyncio.to_thread(f.read, n)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def exists(self, blob_id: str) -> bool:
        return await asyncio.to_thread(self._stat_any, blob_id) is not None

    async def size(self, blob_id: str) -> int:
        return (await self._stat(blob_id))[0]

    async def modified(self, blob_id: str) -> float:
        return (await self._stat(blob_id))[1]

    async def _stat(self, blob_id: str) -> tuple[int, float]:
        found = await asyncio.to_thread(self._stat_any, blob_id)
        if found is None:
            raise BlobNotFound(blob_id)
        return found

    def _stat_any(self, blob_id: str) -> tuple[int, float] | None:
        """``(size, mtime)`` from the pack or the blob's file; None if neither has it."""
        packed = self._pack.stat(_digest(blob_id))
        if packed is not None:
            return packed
        try:
            st = os.stat(self.path(blob_id))
        except FileNotFoundError:
            return None
        return st.st_size, st.st_mtime

    async def list(self) -> AsyncIterator[tuple[str, float]]:
        # The pack a page at a time, then one worker call per top-level shard
        # (bounded memory, few thread hops), leaving out files of blobs that
        # are in the pack too (possible if pack_max changed between puts).
        after = b""
        while True:
            page = await asyncio.to_thread(self._pack.scan, after, _LIST_PAGE)
            for digest, mtime in page:
                yield digest.hex(), mtime
            if len(page) < _LIST_PAGE:
                break
            after = page[-1][0]
        for top in _HEX_PAIRS:
            for entry in await asyncio.to_thread(self._scan_shard_unpacked, top):
                yield entry

    def _scan_shard_unpacked(self, top: str) -> builtins.list[tuple[str, float]]:
        found = self._scan_shard(top)
        if not found:
            return found
        packed = self._pack.present(bytes.fromhex(blob_id) for blob_id, _ in found)
        return [(b, m) for b, m in found if bytes.fromhex(b) not in packed]

    def _scan_shard(self, top: str) -> builtins.list[tuple[str, float]]:
        found: list[tuple[str, float]] = []
        try:
            entries = list(os.scandir(self.root / top))
        except FileNotFoundError:
            return found
        for entry in entries:
            name = entry.name
            if len(name) == 64 and name.startswith(top) and _is_hex(name):
                try:
                    found.append((name, entry.stat().st_mtime))
                except FileNotFoundError:  # collected meanwhile
                    continue
        return found

    def _recover_temps(self, cutoff: float) -> None:
        """After a crash: put back blobs a GC was checking (``<id>.<token>.gc``;
        the GC decides again later) and remove uploads older than ``cutoff``."""
        for entry in os.scandir(self.tmp):
            try:
                if entry.name.endswith(".gc"):
                    self._restore(entry.name.split(".", 1)[0], Path(entry.path))
                    log.info("put back %s, left by an interrupted GC check", entry.name)
                elif entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    log.info("removed stale temporary blob file %s", entry.name)
            except FileNotFoundError:
                continue

    def _restore(self, blob_id: str, doomed: Path) -> None:
        if len(blob_id) == 64 and _is_hex(blob_id):
            final = self.path(blob_id)
            self._make_shard(final.parent)
            try:
                os.link(doomed, final)
            except FileExistsError:
                pass
        doomed.unlink()

    async def close(self) -> None:
        if self._drainer is not None:
            await self._drainer  # puts already handed in finish
        if self._pack_drainer is not None:
            await self._pack_drainer
        await asyncio.get_running_loop().run_in_executor(self._pack_thread, self._pack.close)
        self._pack_thread.shutdown(wait=True)
        if self._syncfs_fd is not None:
            os.close(self._syncfs_fd)
            self._syncfs_fd = None


_HEX_PAIRS = tuple(a + b for a in _HEX for b in _HEX)
_TEMP_PREFIX = f"{os.getpid()}-{uuid.uuid4().hex[:8]}-"  # unique per process
_temp_numbers = itertools.count()


def _load_syncfs() -> ctypes._NamedFuncPointer | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _load_syncfs()


def _digest(blob_id: str) -> bytes:
    return bytes.fromhex(check_blob_id(blob_id))


def _is_hex(name: str) -> bool:
    return all(c in _HEX for c in name)


def _write_hashed(f: BinaryIO, hasher: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)
        f.write(chunk)


def _read_back(f: BinaryIO, tmp_path: Path) -> bytes:
    """The bytes written to a temporary file, which is then removed."""
    try:
        f.flush()  # f is write-only: read the file back through a second handle
        with open(tmp_path, "rb") as again:
            return again.read()
    finally:
        _discard(f, tmp_path)


def _discard(f: BinaryIO, tmp_path: Path) -> None:
    try:
        f.close()
    finally:
        tmp_path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems refuse fsync on a folder
        if e.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
