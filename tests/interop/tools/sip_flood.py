#!/usr/bin/env python3
"""A SIPVicious-style flood from one source address, for the flood-defence interop test.

  sip_flood.py flood SRC_IP GATEWAY N SECONDS   # N INVITEs and N REGISTERs with a wrong password
  sip_flood.py probe SRC_IP GATEWAY             # one OPTIONS: exit 0 when it is answered

`flood` first asks for a challenge (one REGISTER without credentials) so its REGISTERs carry a
real nonce and fail on the password, as a password guesser's do. It sends at an even rate over
SECONDS and prints one JSON line: messages sent, responses received by status code, and when the
last response arrived (seconds after the start).
"""
import hashlib
import json
import re
import socket
import sys
import time


def request(method, me, gw, i, extra=""):
    return (
        f"{method} sip:{'1001@' if method == 'INVITE' else ''}{gw[0]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bKfl{method[0]}{i}\r\n"
        f"From: <sip:1001@{gw[0]}>;tag=fl{i}\r\n"
        f"To: <sip:1001@{gw[0]}>\r\n"
        f"Call-ID: flood-{method}-{i}@{me[0]}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Contact: <sip:1001@{me[0]}:{me[1]}>\r\n"
        f"Max-Forwards: 70\r\n"
        f"User-Agent: friendly-scanner\r\n"
        f"{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def challenge(sock, me, gw):
    sock.sendto(request("REGISTER", me, gw, "c"), gw)
    sock.settimeout(2)
    data, _ = sock.recvfrom(65535)
    text = data.decode(errors="replace")
    realm = re.search(r'realm="([^"]*)"', text).group(1)
    nonce = re.search(r'nonce="([^"]*)"', text).group(1)
    return realm, nonce


def wrong_password(realm, nonce, gw, guess):
    ha1 = hashlib.md5(f"1001:{realm}:guess{guess}".encode()).hexdigest()
    ha2 = hashlib.md5(f"REGISTER:sip:{gw[0]}".encode()).hexdigest()
    resp = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    return (
        f'Authorization: Digest username="1001", realm="{realm}", nonce="{nonce}", '
        f'uri="sip:{gw[0]}", response="{resp}", algorithm=MD5\r\n'
    )


def flood(src, gw, n, secs):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src, 0))
    me = sock.getsockname()
    realm, nonce = challenge(sock, me, gw)
    sock.setblocking(False)
    codes, last, sent = {}, 0.0, 0
    start = time.monotonic()
    interval = secs / (2 * n)

    def drain():
        nonlocal last
        while True:
            try:
                data, _ = sock.recvfrom(65535)
            except BlockingIOError:
                return
            m = re.match(rb"SIP/2.0 (\d{3})", data)
            if m:
                codes[m.group(1).decode()] = codes.get(m.group(1).decode(), 0) + 1
                last = time.monotonic() - start

    for i in range(n):
        for method in ("INVITE", "REGISTER"):
            extra = wrong_password(realm, nonce, gw, i) if method == "REGISTER" else ""
            sock.sendto(request(method, me, gw, i, extra), gw)
            sent += 1
            due = start + sent * interval
            while time.monotonic() < due:
                drain()
                time.sleep(min(0.0005, max(0.0, due - time.monotonic())))
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        drain()
        time.sleep(0.01)
    print(json.dumps({"sent": sent, "secs": round(time.monotonic() - start - 1.0, 2),
                      "answered": sum(codes.values()), "codes": codes,
                      "last_answer_secs": round(last, 2)}))


def probe(src, gw):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src, 0))
    me = sock.getsockname()
    sock.settimeout(1.0)
    sock.sendto(request("OPTIONS", me, gw, f"p{time.time_ns()}"), gw)
    try:
        data, _ = sock.recvfrom(65535)
    except socket.timeout:
        print("probe: no answer")
        return 1
    print("probe:", data.split(b"\r\n", 1)[0].decode())
    return 0


def main():
    mode, src, gw = sys.argv[1], sys.argv[2], sys.argv[3]
    host, port = gw.rsplit(":", 1)
    gw = (host, int(port))
    if mode == "flood":
        flood(src, gw, int(sys.argv[4]), float(sys.argv[5]))
        return 0
    return probe(src, gw)


if __name__ == "__main__":
    sys.exit(main())
