"""The sample SQL schema that a fresh install gets, and that the default queries and the
``fdbmail directory`` command use.  Names follow Stalwart's sample schema so its users find
their way: ``accounts`` (name, secret, description, type, quota, active), ``group_members``
(name, member_of), ``emails`` (name, address, type primary/alias/list), plus ``domains`` for
domains that have no address yet.  A catch-all is the address ``@domain``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name        TEXT PRIMARY KEY,
    secret      TEXT,
    description TEXT NOT NULL DEFAULT '',
    type        TEXT NOT NULL DEFAULT 'individual' CHECK (type IN ('individual', 'group')),
    quota       INTEGER NOT NULL DEFAULT 0 CHECK (quota >= 0),
    active      BOOLEAN NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS group_members (
    name        TEXT NOT NULL,
    member_of   TEXT NOT NULL,
    PRIMARY KEY (name, member_of)
);
CREATE INDEX IF NOT EXISTS group_members_member_of ON group_members (member_of);
CREATE TABLE IF NOT EXISTS emails (
    name        TEXT NOT NULL,
    address     TEXT NOT NULL COLLATE NOCASE,
    type        TEXT NOT NULL DEFAULT 'primary' CHECK (type IN ('primary', 'alias', 'list')),
    domain      TEXT COLLATE NOCASE
                GENERATED ALWAYS AS (substr(address, instr(address, '@') + 1)) VIRTUAL,
    PRIMARY KEY (name, address)
);
CREATE INDEX IF NOT EXISTS emails_address ON emails (address);
CREATE INDEX IF NOT EXISTS emails_domain ON emails (domain);
CREATE TABLE IF NOT EXISTS domains (
    name        TEXT PRIMARY KEY COLLATE NOCASE
);
"""

# The same schema for PostgreSQL (created by the operator; fdbmail never creates it there).
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name        TEXT PRIMARY KEY,
    secret      TEXT,
    description TEXT NOT NULL DEFAULT '',
    type        TEXT NOT NULL DEFAULT 'individual' CHECK (type IN ('individual', 'group')),
    quota       BIGINT NOT NULL DEFAULT 0 CHECK (quota >= 0),
    active      BOOLEAN NOT NULL DEFAULT true
);
CREATE TABLE IF NOT EXISTS group_members (
    name        TEXT NOT NULL,
    member_of   TEXT NOT NULL,
    PRIMARY KEY (name, member_of)
);
CREATE INDEX IF NOT EXISTS group_members_member_of ON group_members (member_of);
CREATE TABLE IF NOT EXISTS emails (
    name        TEXT NOT NULL,
    address     TEXT NOT NULL,
    type        TEXT NOT NULL DEFAULT 'primary' CHECK (type IN ('primary', 'alias', 'list')),
    domain      TEXT GENERATED ALWAYS AS (split_part(address, '@', 2)) STORED,
    PRIMARY KEY (name, address)
);
CREATE INDEX IF NOT EXISTS emails_address ON emails (address);
CREATE INDEX IF NOT EXISTS emails_domain ON emails (domain);
CREATE TABLE IF NOT EXISTS domains (
    name        TEXT PRIMARY KEY
);
"""


def create_sqlite_schema(path: Path) -> None:
    """Create the sample schema in ``path`` (and its folder); existing tables are kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SQLITE_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.commit()
    finally:
        conn.close()
