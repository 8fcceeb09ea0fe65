#!/usr/bin/env python3
"""Asks a name server for a topic's route over the remoting protocol (JSON header) and prints the body.

Used by scripts/cluster to wait for brokers to register, independent of the Rust crates.
  route_probe.py HOST:PORT TOPIC [--legacy]      --legacy: version 399, no acceptStandardJsonOnly
Exit status: 0 route printed, 3 topic not found (or other response code), 4 connection failed.
With RMQ_PROBE_TLS_CA set (a CA file), it speaks TLS and verifies the server against that CA.
"""
import json
import os
import socket
import ssl
import struct
import sys


def main():
    addr, topic = sys.argv[1], sys.argv[2]
    legacy = "--legacy" in sys.argv[3:]
    host, port = addr.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("route_probe: refusing a non-loopback address " + addr)
    ext = {"topic": topic}
    if not legacy:
        ext["acceptStandardJsonOnly"] = "true"
    header = json.dumps({
        "code": 105, "extFields": ext, "flag": 0, "language": "OTHER", "opaque": 1,
        "serializeTypeCurrentRPC": "JSON", "version": 399 if legacy else 479,
    }, separators=(",", ":")).encode()
    frame = struct.pack(">ii", 4 + len(header), len(header)) + header
    try:
        with socket.create_connection((host, int(port)), timeout=3) as raw:
            ca = os.environ.get("RMQ_PROBE_TLS_CA")
            s = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname=host) if ca else raw
            s.sendall(frame)
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("connection closed")
                data += chunk
    except OSError as e:
        print("route_probe: %s: %s" % (addr, e), file=sys.stderr)
        sys.exit(4)
    total, word = struct.unpack(">ii", data[:8])
    hlen = word & 0xFFFFFF
    if word >> 24 != 0:
        print("route_probe: binary response header not supported here", file=sys.stderr)
        sys.exit(3)
    resp = json.loads(data[8:8 + hlen])
    body = data[8 + hlen:4 + total]
    if resp.get("code") != 0:
        print("route_probe: code %s: %s" % (resp.get("code"), resp.get("remark")), file=sys.stderr)
        sys.exit(3)
    sys.stdout.write(body.decode("utf-8"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
