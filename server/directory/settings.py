"""The ``[directory]`` settings: which backend answers, how long answers are cached, and the
queries, filters and attribute names of the SQL and LDAP backends (flat keys, ``sql_*`` and
``ldap_*``)."""

from __future__ import annotations

from server.config import Section, Setting

_PEOPLE = "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))"
_GROUPS = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
_EMAIL_CLASSES = f"(|{_PEOPLE}{_GROUPS})"

SECTION = Section(
    "directory",
    "Accounts, passwords, groups, aliases and domains, read from SQL or LDAP at request time "
    "(never copied into the store).",
    (
        Setting("type", "sql", "Backend: 'sql' (SQLite built in, or PostgreSQL) or 'ldap'.",
                ("sql", "ldap")),
        Setting("cache_ttl", 2.0, "Seconds an answer (principal, recipient, domain) is reused; "
                "0 disables the cache. Passwords are always checked against the directory."),
        Setting("cache_size", 10000, "Most answers kept in the cache (oldest dropped first)."),
        Setting("allow_plaintext_passwords", False, "Accept secrets stored as plain text "
                "({PLAIN}, {CLEARTEXT} or no scheme). Off: such accounts cannot log in."),
        Setting("password_scheme", "bcrypt", "Hash used by `fdbmail directory passwd` for new "
                "passwords.", ("bcrypt", "argon2")),
        Setting("subaddress_separator", "+", "Separator of sub-addresses: mail for "
                "user+tag@domain goes to user@domain when no exact address exists. Empty "
                "disables sub-addressing."),
        Setting("case_sensitive_local_part", False, "Compare local parts of addresses "
                "case-sensitively (domains always compare case-insensitively)."),
        # -- SQL ------------------------------------------------------------------------
        Setting("sql_driver", "sqlite", "SQL driver: 'sqlite' (built in) or 'postgresql' "
                "(needs the 'postgres' extra, psycopg).", ("sqlite", "postgresql")),
        Setting("sql_path", "", "SQLite file; empty means <data_dir>/directory.sqlite3."),
        Setting("sql_create_schema", True, "Create the sample schema (accounts, group_members, "
                "emails, domains) when the SQLite file does not exist yet."),
        Setting("sql_dsn", "", "PostgreSQL connection string (libpq form, e.g. "
                "'host=db dbname=mail user=fdbmail'); a password is best given in PGPASSWORD "
                "or ~/.pgpass."),
        Setting("sql_pool_size", 4, "Most concurrent SQL connections (one per worker thread)."),
        Setting("sql_timeout", 5.0, "Seconds to wait for a connection or a locked database."),
        Setting("sql_query_name", "SELECT name, type, secret, description, quota FROM accounts "
                "WHERE name = ? AND active = true",
                "Query 'name': the principal with this login name. Columns by name: name, type "
                "('individual' or 'group'), secret, description, quota, and optionally id (the "
                "stable account id; the name when absent). Every ? receives the looked-up value; "
                "queries are always parameterised."),
        Setting("sql_query_members", "SELECT member_of FROM group_members WHERE name = ?",
                "Query 'members': names of the groups the principal belongs to (first column)."),
        Setting("sql_query_group_members", "SELECT name FROM group_members WHERE member_of = ?",
                "Query 'group_members' (fdbmail): names of the members of a group (first "
                "column); used to expand groups when mail is delivered."),
        Setting("sql_query_recipients", "SELECT name FROM emails WHERE address = ? "
                "ORDER BY name", "Query 'recipients': names of the principals that own an "
                "address, alias or list address (first column). A catch-all is stored as "
                "'@domain'."),
        Setting("sql_query_emails", "SELECT address FROM emails WHERE name = ? AND "
                "type != 'list' ORDER BY type DESC, address", "Query 'emails': addresses of a "
                "principal, the primary one first (first column)."),
        Setting("sql_query_verify", "SELECT address FROM emails WHERE address LIKE '%' || "
                "replace(replace(replace(?, '!', '!!'), '%', '!%'), '_', '!_') || '%' "
                "ESCAPE '!' AND type = 'primary' ORDER BY address LIMIT 5",
                "Query 'verify' (SMTP VRFY): addresses containing a string (first column). "
                "The value is passed as typed: a query that uses it in LIKE must escape "
                "'%' and '_' itself, as this default does."),
        Setting("sql_query_expand", "SELECT p.address FROM emails AS p JOIN emails AS l ON "
                "p.name = l.name WHERE p.type = 'primary' AND l.address = ? AND "
                "l.type = 'list' ORDER BY p.address LIMIT 50",
                "Query 'expand' (SMTP EXPN): member addresses of a list address (first column)."),
        Setting("sql_query_domains", "SELECT 1 FROM domains WHERE name = ? UNION ALL SELECT 1 "
                "FROM emails WHERE domain = ? LIMIT 1",
                "Query 'domains': any row when the domain is local."),
        Setting("sql_query_domain_list", "SELECT name FROM domains UNION SELECT domain FROM "
                "emails ORDER BY 1", "Query 'domain_list' (fdbmail): every local domain (first "
                "column), used by list_domains."),
        # -- LDAP -----------------------------------------------------------------------
        Setting("ldap_url", ["ldap://127.0.0.1:389"], "LDAP server URLs (ldap:// or ldaps://), "
                "tried in order."),
        Setting("ldap_bind_dn", "", "DN the node binds as to search; empty for an anonymous "
                "bind."),
        Setting("ldap_bind_password", "", "Password of ldap_bind_dn (prefer "
                "ldap_bind_password_file, which keeps it out of the config)."),
        Setting("ldap_bind_password_file", "", "File holding the password of ldap_bind_dn "
                "(one line; read at each new connection, so it can be rotated)."),
        Setting("ldap_base_dn", "dc=example,dc=org", "Base of every search (subtree scope)."),
        Setting("ldap_timeout", 5.0, "Seconds to wait for the server (connect and each "
                "operation)."),
        Setting("ldap_pool_size", 4, "Most concurrent LDAP connections (one per worker "
                "thread)."),
        Setting("ldap_starttls", False, "Upgrade ldap:// connections with StartTLS."),
        Setting("ldap_tls_ca_file", "", "PEM file of CA certificates for ldaps:// and "
                "StartTLS; empty means the system trust store."),
        Setting("ldap_tls_verify", True, "Verify the server's certificate and host name."),
        Setting("ldap_auth_method", "bind", "How passwords are checked: 'bind' (bind as the "
                "user's DN) or 'lookup' (read ldap_attr_secret and compare the hash here).",
                ("bind", "lookup")),
        Setting("ldap_filter_name", f"(|(&{_PEOPLE}(uid=?))(&{_GROUPS}(cn=?)))",
                "Filter finding a principal by login name; every ? receives the value, escaped "
                "per RFC 4515."),
        Setting("ldap_filter_email", f"(&{_EMAIL_CLASSES}(|(mail=?)(mailAlternateAddress=?)))",
                "Filter finding the principals that own an address or alias (a catch-all is "
                "the value '@domain')."),
        Setting("ldap_filter_verify", f"(&{_EMAIL_CLASSES}(|(mail=*?*)"
                "(mailAlternateAddress=*?*)))", "Filter for SMTP VRFY."),
        Setting("ldap_filter_expand", f"(&{_GROUPS}(|(mail=?)(mailAlternateAddress=?)))",
                "Filter finding a list (group) by address, for SMTP EXPN."),
        Setting("ldap_filter_domains", f"(&{_EMAIL_CLASSES}(|(mail=*@?)"
                "(mailAlternateAddress=*@?)))", "Filter matching any entry when the domain is "
                "local."),
        Setting("ldap_filter_domain_list", f"(&{_EMAIL_CLASSES}(|(mail=*)"
                "(mailAlternateAddress=*)))", "Filter whose entries' address domains make "
                "the domain list."),
        Setting("ldap_filter_groups", "(|(&(objectClass=groupOfNames)(member=?))"
                "(&(objectClass=groupOfUniqueNames)(uniqueMember=?)))",
                "Filter finding the groups of a principal by its DN (each ? receives the DN); "
                "empty means read ldap_attr_member_of instead."),
        Setting("ldap_filter_groups_by_name", "(&(objectClass=posixGroup)(memberUid=?))",
                "Filter finding the groups of a principal by its login name (RFC 2307 "
                "posixGroup); empty disables it."),
        Setting("ldap_attr_id", "entryUUID", "Attribute holding the stable account id "
                "(RFC 4530 entryUUID by default); empty or absent means the DN."),
        Setting("ldap_attr_name", ["uid", "cn"], "Attributes holding the login name (first "
                "present wins)."),
        Setting("ldap_attr_class", "objectClass", "Attribute telling groups from individuals."),
        Setting("ldap_group_classes", ["groupOfNames", "groupOfUniqueNames", "posixGroup"],
                "Values of ldap_attr_class that make an entry a group."),
        Setting("ldap_attr_email", ["mail"], "Attributes holding the primary address."),
        Setting("ldap_attr_email_alias", ["mailAlternateAddress"], "Attributes holding "
                "aliases."),
        Setting("ldap_attr_secret", ["userPassword"], "Attributes holding password hashes "
                "(ldap_auth_method = 'lookup')."),
        Setting("ldap_attr_description", ["description", "cn"], "Attributes holding the "
                "description (first present wins)."),
        Setting("ldap_attr_member_of", ["memberOf"], "DN-valued attributes naming the groups "
                "of an entry (used when ldap_filter_groups is empty)."),
        Setting("ldap_attr_members", ["member", "uniqueMember"], "DN-valued attributes "
                "naming the members of a group."),
        Setting("ldap_attr_member_names", ["memberUid"], "Attributes naming the members of a "
                "group by login name (RFC 2307 posixGroup), looked up with ldap_filter_name."),
        Setting("ldap_attr_quota", ["mailQuota"], "Attributes holding the quota in bytes."),
    ),
)
