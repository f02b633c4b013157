#!/usr/bin/env python3
"""One command to baresip's ctrl_tcp socket (netstring-framed JSON), waiting for its response;
exit 0 when baresip says ok.   usage: baresip_cmd.py HOST:PORT COMMAND [PARAMS...]
e.g. baresip_cmd.py 127.0.0.1:4444 dial sip:*551001@127.0.0.1:5060 ; ... sndcode 5 ; ... hangup"""
import json, socket, sys

host, port = sys.argv[1].split(":")
command = {"command": sys.argv[2], "params": " ".join(sys.argv[3:]), "token": "interop"}
data = json.dumps(command).encode()
sock = socket.create_connection((host, int(port)), timeout=5)
sock.sendall(b"%d:%s," % (len(data), data))
buf = b""
while True:
    chunk = sock.recv(65536)
    if not chunk:
        sys.exit(1)
    buf += chunk
    while b":" in buf:
        size, rest = buf.split(b":", 1)
        if len(rest) <= int(size):
            break
        msg, buf = json.loads(rest[: int(size)]), rest[int(size) + 1 :]
        if msg.get("response"):
            print(json.dumps(msg))
            sys.exit(0 if msg.get("ok") else 1)
