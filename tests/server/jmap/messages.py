"""Messages for the Email/get, download, Email/parse and SearchSnippet tests."""

from __future__ import annotations


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


# multipart/alternative with an attachment, an encoded-word subject and header fields
# for every header form (RFC 8621 section 4.1.2).
ALTERNATIVE = crlf(
    "From: =?UTF-8?Q?Ren=C3=A9e?= <renee@remote.test>\n"
    "To: Team: alice@example.com, Bob <bob@example.com>;, carol@remote.test\n"
    "Subject: =?UTF-8?B?UsOpdW5pb24gZGUgbHVuZGk=?=\n"
    "Date: Sat, 05 Dec 2026 10:00:00 +0100\n"
    "Message-ID: <alt-1@remote.test>\n"
    "References: <a@remote.test>\n <b@remote.test>\n"
    "List-Unsubscribe: <mailto:leave@remote.test>,\n <https://remote.test/leave>\n"
    "X-Tag: one\n"
    "X-Tag: two\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=outer\n"
    "\n"
    "--outer\n"
    "Content-Type: multipart/alternative; boundary=alt\n"
    "\n"
    "--alt\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "R=C3=A9union lundi =E2=80=94 agenda attached.\n"
    "--alt\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>R\u00e9union <b>lundi</b></p>\n"
    "--alt--\n"
    "--outer\n"
    'Content-Type: application/pdf; name="agenda.pdf"\n'
    'Content-Disposition: attachment; filename="agenda.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "JVBERi0xLjQKJSBhZ2VuZGEK\n"
    "--outer--\n"
)
AGENDA_PDF = b"%PDF-1.4\n% agenda\n"

NESTED = crlf(
    "From: Eve <eve@remote.test>\n"
    "To: alice@example.com\n"
    "Subject: Fwd: Lunch?\n"
    "Date: Wed, 4 Mar 2026 08:00:00 +0000\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="fwd"\n'
    "\n"
    "--fwd\n"
    "Content-Type: text/plain\n"
    "\n"
    "Forwarding this.\n"
    "--fwd\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: Frank <frank@remote.test>\n"
    "To: Eve <eve@remote.test>\n"
    "Subject: Lunch?\n"
    "Date: Tue, 3 Mar 2026 09:59:58 +0100\n"
    "Message-ID: <lunch-1@remote.test>\n"
    "\n"
    "Noon at the usual place?\n"
    "--fwd--\n"
)
INNER = crlf(
    "From: Frank <frank@remote.test>\n"
    "To: Eve <eve@remote.test>\n"
    "Subject: Lunch?\n"
    "Date: Tue, 3 Mar 2026 09:59:58 +0100\n"
    "Message-ID: <lunch-1@remote.test>\n"
    "\n"
    "Noon at the usual place?"
)

LATIN1 = (
    b"From: someone@remote.test\r\nTo: alice@example.com\r\nSubject: Caf\xe9\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"\r\nUn caf\xe9 cr\xe8me, s'il vous pla\xeet.\r\n"
)

BROKEN = (
    b"From: \xff\xfe broken <x@remote.test>\r\nTo: alice@example.com\r\n"
    b"Subject: =?x-unknown?Q?bad?= broken\r\nDate: not a date\r\n"
    b"Content-Type: multipart/mixed; boundary=never\r\n\r\n"
    b"--never\r\nContent-Type: text/plain; charset=x-unknown\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n"
    b"--never\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\x28 bad utf-8\r\n"
)

# RFC 8621 section 4.1.4's example structure (parts A to K).
def rfc_example() -> bytes:
    def leaf(kind: str, label: str, disposition: str = "inline") -> str:
        return (f"Content-Type: {kind}\nContent-Disposition: {disposition}\n\n"
                f"{label}\n")

    def multi(subtype: str, boundary: str, *parts: str) -> str:
        inner = "".join(f"--{boundary}\n{p}" for p in parts)
        return (f"Content-Type: multipart/{subtype}; boundary={boundary}\n\n"
                f"{inner}--{boundary}--\n")
    related = multi("related", "rel", "Content-Type: text/html\n\n<p>E</p>\n",
                    "Content-Type: image/jpeg\n\nF\n")
    alternative = multi("alternative", "alt",
                        multi("mixed", "m3", leaf("text/plain", "B"),
                              leaf("image/jpeg", "C"), leaf("text/plain", "D")),
                        related)
    inner = multi("mixed", "m2", alternative, leaf("image/jpeg", "G", "attachment"),
                  "Content-Type: application/x-excel\n\nH\n",
                  "Content-Type: message/rfc822\n\nSubject: J\n\nJ\n")
    top = multi("mixed", "m1", leaf("text/plain", "A"), inner, leaf("text/plain", "K"))
    return crlf("From: a@remote.test\nSubject: RFC 8621 4.1.4\nMIME-Version: 1.0\n" + top)
