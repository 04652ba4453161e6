"""Realistic sample messages shared by the mime tests (CRLF line ends unless said otherwise)."""

from __future__ import annotations


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


# RFC 3501 §8 / RFC 9051 §8 sample: the message behind the example FETCH response.
RFC_SAMPLE_BODY = "".join(f"line {i:03d} of the minutes\n" for i in range(92))
RFC_SAMPLE = crlf(
    "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
    "From: Terry Gray <gray@cac.washington.edu>\n"
    "Subject: IMAP4rev1 WG mtg summary and minutes\n"
    "To: imap@cac.washington.edu\n"
    "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n"
    "Message-Id: <B27397-0100000@cac.washington.edu>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
    "\n" + RFC_SAMPLE_BODY
)

PLAIN = crlf(
    "Return-Path: <alice@example.org>\n"
    "Received: from mx.example.org by mx.example.net; Tue, 3 Mar 2026 10:00:00 +0000\n"
    "From: Alice Example <alice@example.org>\n"
    "To: Bob <bob@example.net>\n"
    "Subject: Lunch?\n"
    "Date: Tue, 3 Mar 2026 09:59:58 +0100\n"
    "Message-ID: <lunch-1@example.org>\n"
    "\n"
    "Hi Bob,\n"
    "\n"
    "  lunch   at noon?\n"
    "\n"
    "Alice\n"
)

ALTERNATIVE = crlf(
    "From: =?UTF-8?Q?Ren=C3=A9e_Dupr=C3=A9?= <renee@example.fr>\n"
    'To: "Smith, John" <john@example.com>, team: a@example.com, b@example.com;\n'
    "Subject: =?UTF-8?B?UsOpdW5pb24gZGUgbCfDqXF1aXBl?=\n"
    "Date: Mon, 2 Mar 2026 18:30:00 +0100\n"
    "Message-ID: <alt-1@example.fr>\n"
    "In-Reply-To: <root@example.com>\n"
    "References: <root@example.com> <mid@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="alt-boundary"\n'
    "\n"
    "This is a multi-part message in MIME format.\n"
    "--alt-boundary\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "R=C3=A9union demain =E2=80=94 10h.\n"
    "--alt-boundary\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "<html><head><style>p {color: red}</style></head>"
    "<body><p>R&eacute;union <b>demain</b></p></body></html>\n"
    "--alt-boundary--\n"
)

MIXED = crlf(
    "From: Carol <carol@example.com>\n"
    "To: dave@example.com\n"
    "Subject: Report and photo\n"
    "Date: Sun, 1 Mar 2026 12:00:00 -0500\n"
    "Message-ID: <mixed-1@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=outer\n"
    "\n"
    "--outer\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "See attached.\n"
    "--outer\n"
    'Content-Type: application/pdf; name="report.pdf"\n'
    'Content-Disposition: attachment; filename="report.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    "Content-Description: Quarterly report\n"
    "\n"
    "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\n"
    "eJzLSM3JyVcozy/KSQEAGgQEXQ==\n"
    "--outer\n"
    "Content-Type: image/png\n"
    "Content-Disposition: attachment;\n"
    " filename*0*=UTF-8''%E2%82%AC%20rates;\n"
    ' filename*1=".png"\n'
    "Content-Transfer-Encoding: base64\n"
    "Content-ID: <img1@example.com>\n"
    "Content-Language: en, fr\n"
    "Content-Location: http://example.com/rates.png\n"
    "\n"
    "iVBORw0KGgo=\n"
    "--outer--\n"
)

NESTED = crlf(
    "From: Eve <eve@example.net>\n"
    "To: frank@example.net\n"
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
    "Content-Disposition: inline\n"
    "\n"
    "From: Alice Example <alice@example.org>\n"
    "To: Bob <bob@example.net>\n"
    "Subject: Lunch?\n"
    "Date: Tue, 3 Mar 2026 09:59:58 +0100\n"
    "Message-ID: <lunch-1@example.org>\n"
    "\n"
    "Noon?\n"
    "--fwd--\n"
)
