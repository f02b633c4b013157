#!/usr/bin/env python3
"""The customer's phone behind the SIPp carrier in the callback test: an RTP peer on PORT.
Sends 300 Hz "early media" while the call only rings, then 440 Hz once the carrier answered
(answered.time appears), presses 1 (RFC 4733) PRESS_AT seconds after the answer, and records what
the gateway sends. Writes a JSON report: packets that arrived before the answer, the level of what
arrived in the 3 s after it (the greeting), and the dominant frequency of the last 2 s heard.
usage: callback_phone.py PORT SECONDS PRESS_AT report.json   (run in the SIPp scenario's directory)"""
import json, math, os, socket, struct, sys, time

port, seconds, press_at, out = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

def ulaw_enc(s):
    sign = 0x80 if s < 0 else 0
    mag = min(abs(s), 32635) + 0x84
    exp = min(max(0, mag.bit_length() - 8), 7)
    return ~(sign | (exp << 4) | ((mag >> (exp + 3)) & 0x0F)) & 0xFF

def ulaw_dec(b):
    b = ~b & 0xFF
    t = (((b & 0x0F) << 3) + 0x84) << ((b & 0x70) >> 4)
    return (0x84 - t) if b & 0x80 else (t - 0x84)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
sock.setblocking(False)
start = time.time()
gw, te_pt, answered = None, 101, None
heard = []            # (arrival time, samples)
seq, ts, n = 1, 0, 0
pressed = 0
while time.time() - start < seconds:
    now = time.time()
    if gw is None and os.path.exists("gwport.txt"):
        parts = open("gwport.txt").read().split()
        if len(parts) >= 2:
            gw, te_pt = ("127.0.0.1", int(parts[0])), int(parts[1])
    if answered is None and os.path.exists("answered.time"):
        text = open("answered.time").read().strip()
        if text:
            answered = float(text)
    if gw is not None:
        hz = 440 if answered else 300
        if answered and now - answered >= press_at and pressed < 8:
            # RFC 4733: digit 1, 8 packets, end bit on the last three.
            dur = (pressed + 1) * 160
            payload = struct.pack("!BBH", 1, (0x80 if pressed >= 5 else 0) | 10, dur)
            pkt = struct.pack("!BBHII", 0x80, (0x80 if pressed == 0 else 0) | te_pt, seq, press_ts, 0x1234) + payload
            pressed += 1
        else:
            if pressed == 0:
                press_ts = ts
            samples = bytes(ulaw_enc(int(12000 * math.sin(2 * math.pi * hz * (n + i) / 8000))) for i in range(160))
            pkt = struct.pack("!BBHII", 0x80, 0, seq, ts, 0x1234) + samples
            n += 160
        sock.sendto(pkt, gw)
        seq, ts = (seq + 1) & 0xFFFF, ts + 160
    while True:
        try:
            data, _ = sock.recvfrom(2048)
        except BlockingIOError:
            break
        if len(data) > 12 and data[1] & 0x7F == 0:
            heard.append((time.time(), [ulaw_dec(b) for b in data[12:]]))
    time.sleep(max(0, 0.02 - (time.time() - now)))

def rms(x):
    return math.sqrt(sum(v * v for v in x) / len(x)) if x else 0.0

def dominant(x, rate=8000):
    best, bp = 0, -1
    for hz in range(100, 3400, 10):
        re = sum(v * math.cos(2 * math.pi * hz * i / rate) for i, v in enumerate(x))
        im = sum(v * math.sin(2 * math.pi * hz * i / rate) for i, v in enumerate(x))
        if re * re + im * im > bp:
            best, bp = hz, re * re + im * im
    return best

report = {"answered": answered is not None, "pressed": pressed >= 8}
if answered:
    report["packets_before_answer"] = sum(1 for t, _ in heard if t < answered)
    greeting = [s for t, p in heard if answered <= t < answered + 3 for s in p]
    report["greeting_rms"] = round(rms(greeting))
    last = [s for _, p in heard for s in p][-8000:]
    report["last_rms"] = round(rms(last))
    report["last_hz"] = dominant(last[-4000:]) if last else 0
json.dump(report, open(out, "w"))
print(json.dumps(report))
