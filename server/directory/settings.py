"""The ``[directory]`` settings: which backend answers, how long answers are cached, and the
queries, filters and attribute names of the SQL and LDAP backends (flat keys, ``sql_*`` and
``ldap_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import section, setting

_PEOPLE = "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))"
_GROUPS = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
_EMAIL_CLASSES = f"(|{_PEOPLE}{_GROUPS})"

@dataclass(frozen=True, slots=True)
class DirectorySettings:
    """The ``[directory]`` settings."""

    type: str = setting("sql",
        "Backend: 'sql' (SQLite built in, or PostgreSQL) or 'ldap'.",
        choices=("sql", "ldap"))
    cache_ttl: float = setting(2.0,
        "Seconds an answer (principal, recipient, domain) is reused; 0 disables the cache. "
        "Passwords are always checked against the directory.")
    cache_size: int = setting(10000, "Most answers kept in the cache (oldest dropped first).")
    allow_plaintext_passwords: bool = setting(False,
        "Accept secrets stored as plain text ({PLAIN}, {CLEARTEXT} or no scheme). Off: such "
        "accounts cannot log in.")
    password_scheme: str = setting("bcrypt",
        "Hash used by `fdbmail directory passwd` for new passwords.",
        choices=("bcrypt", "argon2"))
    subaddress_separator: str = setting("+",
        "Separator of sub-addresses: mail for user+tag@domain goes to user@domain when no exact "
        "address exists. Empty disables sub-addressing.")
    case_sensitive_local_part: bool = setting(False,
        "Compare local parts of addresses case-sensitively (domains always compare "
        "case-insensitively).")
    # -- SQL ------------------------------------------------------------------------
    sql_driver: str = setting("sqlite",
        "SQL driver: 'sqlite' (built in) or 'postgresql' (needs the 'postgres' extra, psycopg).",
        choices=("sqlite", "postgresql"))
    sql_path: str = setting("", "SQLite file; empty means <data_dir>/directory.sqlite3.")
    sql_create_schema: bool = setting(True,
        "Create the sample schema (accounts, group_members, emails, domains) when the SQLite file"
        " does not exist yet.")
    sql_dsn: str = setting("",
        "PostgreSQL connection string (libpq form, e.g. 'host=db dbname=mail user=fdbmail'); a "
        "password is best given in PGPASSWORD or ~/.pgpass.")
    sql_pool_size: int = setting(4, "Most concurrent SQL connections (one per worker thread).")
    sql_timeout: float = setting(5.0, "Seconds to wait for a connection or a locked database.")
    sql_query_name: str = setting("SELECT name, type, secret, description, quota FROM accounts "
                "WHERE name = ? AND active = true",
        "Query 'name': the principal with this login name. Columns by name: name, type "
        "('individual' or 'group'), secret, description, quota, and optionally id (the stable "
        "account id; the name when absent). Every ? receives the looked-up value; queries are "
        "always parameterised.")
    sql_query_members: str = setting("SELECT member_of FROM group_members WHERE name = ?",
        "Query 'members': names of the groups the principal belongs to (first column).")
    sql_query_group_members: str = setting("SELECT name FROM group_members WHERE member_of = ?",
        "Query 'group_members' (fdbmail): names of the members of a group (first column); used to"
        " expand groups when mail is delivered.")
    sql_query_recipients: str = setting("SELECT name FROM emails WHERE address = ? "
                "ORDER BY name",
        "Query 'recipients': names of the principals that own an address, alias or list address "
        "(first column). A catch-all is stored as '@domain'.")
    sql_query_emails: str = setting("SELECT address FROM emails WHERE name = ? AND "
                "type != 'list' ORDER BY type DESC, address",
        "Query 'emails': addresses of a principal, the primary one first (first column).")
    sql_query_verify: str = setting("SELECT address FROM emails WHERE address LIKE '%' || "
                "replace(replace(replace(?, '!', '!!'), '%', '!%'), '_', '!_') || '%' "
                "ESCAPE '!' AND type = 'primary' ORDER BY address LIMIT 5",
        "Query 'verify' (SMTP VRFY): addresses containing a string (first column). The value is "
        "passed as typed: a query that uses it in LIKE must escape '%' and '_' itself, as this "
        "default does.")
    sql_query_expand: str = setting("SELECT p.address FROM emails AS p JOIN emails AS l ON "
                "p.name = l.name WHERE p.type = 'primary' AND l.address = ? AND "
                "l.type = 'list' ORDER BY p.address LIMIT 50",
        "Query 'expand' (SMTP EXPN): member addresses of a list address (first column).")
    sql_query_domains: str = setting("SELECT 1 FROM domains WHERE name = ? UNION ALL SELECT 1 "
                "FROM emails WHERE domain = ? LIMIT 1",
        "Query 'domains': any row when the domain is local.")
    sql_query_domain_list: str = setting("SELECT name FROM domains UNION SELECT domain FROM "
                "emails ORDER BY 1",
        "Query 'domain_list' (fdbmail): every local domain (first column), used by list_domains.")
    # -- LDAP -----------------------------------------------------------------------
    ldap_url: list[str] = setting(["ldap://127.0.0.1:389"],
        "LDAP server URLs (ldap:// or ldaps://), tried in order.")
    ldap_bind_dn: str = setting("", "DN the node binds as to search; empty for an anonymous bind.")
    ldap_bind_password: str = setting("",
        "Password of ldap_bind_dn (prefer ldap_bind_password_file, which keeps it out of the "
        "config).")
    ldap_bind_password_file: str = setting("",
        "File holding the password of ldap_bind_dn (one line; read at each new connection, so it "
        "can be rotated).")
    ldap_base_dn: str = setting("dc=example,dc=org", "Base of every search (subtree scope).")
    ldap_timeout: float = setting(5.0,
        "Seconds to wait for the server (connect and each operation).")
    ldap_pool_size: int = setting(4, "Most concurrent LDAP connections (one per worker thread).")
    ldap_starttls: bool = setting(False, "Upgrade ldap:// connections with StartTLS.")
    ldap_tls_ca_file: str = setting("",
        "PEM file of CA certificates for ldaps:// and StartTLS; empty means the system trust "
        "store.")
    ldap_tls_verify: bool = setting(True, "Verify the server's certificate and host name.")
    ldap_auth_method: str = setting("bind",
        "How passwords are checked: 'bind' (bind as the user's DN) or 'lookup' (read "
        "ldap_attr_secret and compare the hash here).",
        choices=("bind", "lookup"))
    ldap_filter_name: str = setting(f"(|(&{_PEOPLE}(uid=?))(&{_GROUPS}(cn=?)))",
        "Filter finding a principal by login name; every ? receives the value, escaped per RFC "
        "4515.")
    ldap_filter_email: str = setting(f"(&{_EMAIL_CLASSES}(|(mail=?)(mailAlternateAddress=?)))",
        "Filter finding the principals that own an address or alias (a catch-all is the value "
        "'@domain').")
    ldap_filter_verify: str = setting(f"(&{_EMAIL_CLASSES}(|(mail=*?*)"
                "(mailAlternateAddress=*?*)))",
        "Filter for SMTP VRFY.")
    ldap_filter_expand: str = setting(f"(&{_GROUPS}(|(mail=?)(mailAlternateAddress=?)))",
        "Filter finding a list (group) by address, for SMTP EXPN.")
    ldap_filter_domains: str = setting(f"(&{_EMAIL_CLASSES}(|(mail=*@?)"
                "(mailAlternateAddress=*@?)))",
        "Filter matching any entry when the domain is local.")
    ldap_filter_domain_list: str = setting(f"(&{_EMAIL_CLASSES}(|(mail=*)"
                "(mailAlternateAddress=*)))",
        "Filter whose entries' address domains make the domain list.")
    ldap_filter_groups: str = setting("(|(&(objectClass=groupOfNames)(member=?))"
                "(&(objectClass=groupOfUniqueNames)(uniqueMember=?)))",
        "Filter finding the groups of a principal by its DN (each ? receives the DN); empty means"
        " read ldap_attr_member_of instead.")
    ldap_filter_groups_by_name: str = setting("(&(objectClass=posixGroup)(memberUid=?))",
        "Filter finding the groups of a principal by its login name (RFC 2307 posixGroup); empty "
        "disables it.")
    ldap_attr_id: str = setting("entryUUID",
        "Attribute holding the stable account id (RFC 4530 entryUUID by default); empty or absent"
        " means the DN.")
    ldap_attr_name: list[str] = setting(["uid", "cn"],
        "Attributes holding the login name (first present wins).")
    ldap_attr_class: str = setting("objectClass", "Attribute telling groups from individuals.")
    ldap_group_classes: list[str] = setting(["groupOfNames", "groupOfUniqueNames", "posixGroup"],
        "Values of ldap_attr_class that make an entry a group.")
    ldap_attr_email: list[str] = setting(["mail"], "Attributes holding the primary address.")
    ldap_attr_email_alias: list[str] = setting(["mailAlternateAddress"],
        "Attributes holding aliases.")
    ldap_attr_secret: list[str] = setting(["userPassword"],
        "Attributes holding password hashes (ldap_auth_method = 'lookup').")
    ldap_attr_description: list[str] = setting(["description", "cn"],
        "Attributes holding the description (first present wins).")
    ldap_attr_member_of: list[str] = setting(["memberOf"],
        "DN-valued attributes naming the groups of an entry (used when ldap_filter_groups is "
        "empty).")
    ldap_attr_members: list[str] = setting(["member", "uniqueMember"],
        "DN-valued attributes naming the members of a group.")
    ldap_attr_member_names: list[str] = setting(["memberUid"],
        "Attributes naming the members of a group by login name (RFC 2307 posixGroup), looked up "
        "with ldap_filter_name.")
    ldap_attr_quota: list[str] = setting(["mailQuota"], "Attributes holding the quota in bytes.")


SECTION = section(
    "directory",
    "Accounts, passwords, groups, aliases and domains, read from SQL or LDAP at request time "
    "(never copied into the store).",
    DirectorySettings,
)
