#!/usr/bin/env python3
"""A recorder's media side: listens on UDP ports (the streams a SIPREC recorder answered with),
until SIGTERM, and prints a JSON summary per port: packets, the largest RTP timestamp step (a
pause's gap), the dominant frequency and level of the first and the last full second of audio,
and the arrival time (unix ms) of the last packet before the largest gap and of the first after.
usage: rtp_streams.py OUT.json PORT...   (PCMU or PCMA)"""
import json, math, select, signal, socket, struct, sys, time

out, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]


def ulaw(b):
    u = ~b & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def alaw(b):
    a = b ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = t + 8 if seg == 0 else (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


LAW = {0: [ulaw(b) for b in range(256)], 8: [alaw(b) for b in range(256)]}
socks = {}
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", p))
    socks[s.fileno()] = (p, s)
got = {p: [] for p in ports}  # (arrival ms, ts, samples)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
while not stop:
    ready, _, _ = select.select([s for _, s in socks.values()], [], [], 0.2)
    for s in ready:
        data = s.recv(2048)
        if len(data) < 12 or data[1] & 0x7F not in LAW:
            continue
        ts = struct.unpack("!I", data[4:8])[0]
        table = LAW[data[1] & 0x7F]
        got[socks[s.fileno()][0]].append((time.time() * 1000, ts, [table[b] for b in data[12:]]))


def dominant(x):
    best = (0, 0.0)
    for f in range(100, 3900, 10):
        c = 2 * math.cos(2 * math.pi * f / 8000)
        s1 = s2 = 0.0
        for v in x:
            s1, s2 = v + c * s1 - s2, s1
        p = s1 * s1 + s2 * s2 - c * s1 * s2
        if p > best[1]:
            best = (f, p)
    return best[0]


def rms(x):
    return math.sqrt(sum(v * v for v in x) / len(x)) if x else 0.0


summary = {}
for p, pkts in got.items():
    pcm = [v for _, _, smp in pkts for v in smp]
    steps = [((b[1] - a[1]) & 0xFFFFFFFF, i) for i, (a, b) in enumerate(zip(pkts, pkts[1:]))]
    gap, at = max(steps) if steps else (0, 0)
    first, last = pcm[8000:16000], pcm[-16000:-8000]
    summary[p] = {
        "packets": len(pkts),
        "max_ts_step": gap,
        "gap_from_ms": pkts[at][0] if steps else None,
        "gap_to_ms": pkts[at + 1][0] if steps else None,
        "first_hz": dominant(first[:4000]), "first_rms": round(rms(first)),
        "last_hz": dominant(last[:4000]), "last_rms": round(rms(last)),
    }
json.dump(summary, open(out, "w"))
print(json.dumps(summary))
