#!/usr/bin/env python3
"""Writes the seed inputs of the `pgwire` and `http` fuzz targets into
pgwire/ and http/ here. Both the fuzzers (as their starting corpus) and the
regression tests (crates/tiers-db/tests/fuzz_regressions.rs,
crates/tiers-web/tests/fuzz_regressions.rs) read these folders; crashers
the fuzzers find are added next to them under crash-*."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def msg(tag, body=b""):
    return tag + struct.pack(">I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def parse(name, sql, types=()):
    return msg(b"P", cstr(name) + cstr(sql) + struct.pack(">H", len(types))
               + b"".join(struct.pack(">I", t) for t in types))


def bind(portal, stmt, values, result_formats=()):
    body = cstr(portal) + cstr(stmt) + struct.pack(">H", 0) + struct.pack(">H", len(values))
    for v in values:
        body += struct.pack(">i", -1) if v is None else struct.pack(">I", len(v)) + v
    body += struct.pack(">H", len(result_formats)) + b"".join(struct.pack(">H", f) for f in result_formats)
    return msg(b"B", body)


def q(sql):
    return msg(b"Q", cstr(sql))


pg = {
    # The first byte 1: a valid startup message goes in front.
    "simple": b"\x01" + q("SELECT 1, 'a' || 'b', now()") + msg(b"X"),
    "ddl_dml": b"\x01" + q("CREATE TABLE IF NOT EXISTS f (id int PRIMARY KEY, t text)")
    + q("INSERT INTO f VALUES (1, 'x') ON CONFLICT DO NOTHING")
    + q("SELECT * FROM f WHERE id = 1; UPDATE f SET t = 'y' WHERE id = 1")
    + q("BEGIN; DELETE FROM f WHERE id = 2; ROLLBACK") + msg(b"X"),
    "extended": b"\x01" + parse("s1", "SELECT $1::int + 1, $2::text", (23, 25))
    + bind("", "s1", [b"41", None], (1, 0)) + msg(b"D", b"P\0") + msg(b"E", b"\0\0\0\0\0")
    + msg(b"S") + msg(b"C", b"Ss1\0") + msg(b"S") + msg(b"X"),
    "bad_bind": b"\x01" + parse("", "SELECT $1") + msg(b"B", b"\0\0\xff\xff\0\x05")
    + msg(b"S") + bind("", "nope", [b"1"]) + msg(b"S") + msg(b"X"),
    "copy": b"\x01" + q("CREATE TABLE IF NOT EXISTS c (a int, b text)")
    + q("COPY c FROM STDIN") + msg(b"d", b"1\tone\n2\ttwo\n") + msg(b"d", b"bad line\n")
    + msg(b"c") + q("COPY c TO STDOUT") + msg(b"X"),
    "short_length": b"\x01" + b"Q\0\0\0\x02" + q("SELECT 2"),
    "huge_length": b"\x01" + b"Q\x7f\xff\xff\xff" + b"SELECT",
    "deep": b"\x01" + q("SELECT " + "(" * 300 + "1" + ")" * 300) + msg(b"X"),
    "ssl_then_garbage": b"\x00" + struct.pack(">II", 8, 80877103) + b"\x16\x03\x01garbage",
    "cancel": b"\x00" + struct.pack(">IIII", 16, 80877102, 1, 2),
    "old_protocol": b"\x00" + struct.pack(">II", 8, 131072),
    "startup_unterminated": b"\x00" + struct.pack(">II", 20, 196608) + b"user\0tiers",
}

http = {
    "get_range": b"GET /a.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9,20-29,-5\r\n\r\n",
    "codings": b"GET /a.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br;q=0.5, gzip, zstd;q=0\r\n\r\n"
    b"GET /b.js HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nIf-None-Match: \"x\", *\r\n\r\n",
    "pipelined": b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /dir HTTP/1.1\r\nHost: t\r\n\r\n"
    b"GET //dir HTTP/1.1\r\nHost: t\r\n\r\nGET /dir/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "paths": b"GET /../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\nGET /%2e%2e/%2e%2e/x HTTP/1.1\r\nHost: t\r\n\r\n"
    b"GET /.hidden HTTP/1.1\r\nHost: t\r\n\r\nGET /a.txt%00.html HTTP/1.1\r\nHost: t\r\n\r\n",
    "proxied_chunked": b"POST /api/x?y=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    "conditional": b"GET /a.txt HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"
    b"If-Range: \"abc\"\r\nRange: bytes=5-\r\n\r\n",
    "upgrade": b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "h2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    + b"\x00\x00\x05\x01\x05\x00\x00\x00\x01\x82\x84\x86\x41\x00",
    "absolute_form": b"GET http://evil.test/a.txt HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
    b"Content-Length: 3\r\n\r\nabc",
}

for folder, seeds in (("pgwire", pg), ("http", http)):
    os.makedirs(os.path.join(here, folder), exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(here, folder, "seed-" + name), "wb") as f:
            f.write(data)
