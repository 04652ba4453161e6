"""The ``[blobs]`` section: where message bodies and attachments are stored."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import section, setting

MIB = 1024 * 1024

@dataclass(frozen=True, slots=True)
class BlobSettings:
    """The ``[blobs]`` settings."""

    backend: str = setting("fs",
        "Where blobs live: 'fs' (a local folder, the embedded default) or 's3' (an S3-compatible "
        "bucket shared by every node).",
        choices=("fs", "s3"))
    fs_path: str = setting("",
        "Folder of the fs backend; empty means <data_dir>/blobs. Blobs are stored as ab/<sha256> "
        "(256 shard folders); tmp/ holds uploads in progress; packed.sqlite3 holds the small "
        "blobs (see fs_pack_max_bytes).")
    fs_fsync: bool = setting(True,
        "fs: make each blob and its name durable before a put returns (durable before "
        "acknowledged). Turn off only for throwaway test data.")
    fs_sync: str = setting("filesystem",
        "fs: how puts of blobs stored as files are made durable (packed ones: by an fsync of the "
        "pack's log). 'filesystem' (Linux): puts that arrive together are written as a batch made"
        " durable by two syncfs(2) calls (data, then names), far cheaper than an fsync per file "
        "with many small messages; it also flushes whatever else is dirty on that filesystem, so "
        "prefer 'file' if other programs write heavily there. 'file': fsync each blob and its "
        "folder. Where syncfs does not exist, 'file' is used.",
        choices=("filesystem", "file"))
    fs_pack_max_bytes: int = setting(256 * 1024,
        "fs: blobs of at most this many bytes (most messages) are not files of their own but rows"
        " of one SQLite file, <fs_path>/packed.sqlite3: a batch of puts costs one append and one "
        "fsync instead of an inode, a folder entry and a journal commit per blob. Larger blobs "
        "are files under ab/. 0: every blob is a file. Blobs packed under an earlier value stay "
        "readable.",
        minimum=0)
    chunk_size: int = setting(256 * 1024,
        "Size in bytes of the chunks that streamed reads yield and streamed writes buffer before "
        "each write.")
    s3_bucket: str = setting("", "s3: bucket name (must exist).")
    s3_endpoint_url: str = setting("",
        "s3: endpoint URL, e.g. http://minio:9000; empty means AWS's endpoint for the region.")
    s3_region: str = setting("us-east-1", "s3: region name.")
    s3_access_key: str = setting("",
        "s3: access key id; empty means the default AWS credential chain (environment, instance "
        "profile, ...).")
    s3_secret_key: str = setting("", "s3: secret access key (with s3_access_key).")
    s3_prefix: str = setting("blobs/",
        "s3: prefix of every object key; the key of a blob is <prefix><sha256>.")
    s3_addressing_style: str = setting("auto",
        "s3: 'path' (endpoint/bucket/key, what most self-hosted servers need), 'virtual' "
        "(bucket.endpoint/key) or 'auto'.",
        choices=("auto", "path", "virtual"))
    s3_part_size: int = setting(8 * MIB,
        "s3: streamed uploads larger than this use a multipart upload with parts of this many "
        "bytes (at least 5 MiB, S3's minimum); smaller ones are one PUT.")
    s3_spool_memory: int = setting(1 * MIB,
        "s3: a streamed upload is hashed into a spooled temporary file before it is sent (its key"
        " is its SHA-256); up to this many bytes stay in memory, the rest goes to a temporary "
        "file.")
    s3_max_connections: int = setting(32,
        "s3: size of the HTTP connection pool of the one client a node shares.")
    gc_grace_seconds: int = setting(3600,
        "Blobs unreferenced (or never referenced) for less than this are never collected; puts "
        "and index commits must complete well within it.")
    gc_interval_seconds: int = setting(300,
        "How often a node tries to take the GC lease and collect unreferenced blobs; 0 disables "
        "collection on this node.")
    gc_orphan_scan_interval_seconds: int = setting(86400,
        "How often (across all nodes) the GC lists the whole blob store for orphans: blobs put "
        "but never referenced, left by a crash between a put and its index commit. Listing is "
        "costly on large buckets.")


SECTION = section(
    "blobs",
    "The blob store: message bodies and attachments, content-addressed by SHA-256 (a local "
    "folder, or an S3-compatible bucket).",
    BlobSettings,
)
