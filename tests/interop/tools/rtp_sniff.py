#!/usr/bin/env python3
"""Captures the RTP (PCMU) that arrives at one UDP port on lo, as a phone's packet trace would
show it, until SIGTERM; then prints a JSON summary: packets, SSRCs, timestamp steps backwards,
the longest gap between packets, and the dominant frequency of the last 2 s of audio (and of
the second of audio after the stream came back from its gap after the `--mark` file's time,
unix ms, if given, and how long after the mark that was).
usage: rtp_sniff.py PORT OUT.json [--mark FILE]   (root: a raw socket)"""
import json, math, signal, socket, struct, sys, time

port, out = int(sys.argv[1]), sys.argv[2]
mark = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--mark" else None
ULAW = []
for b in range(256):
    u = ~b & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    ULAW.append(0x84 - t if u & 0x80 else t - 0x84)

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("lo", 0))
s.settimeout(0.2)
packets = []  # (arrival, ssrc, seq, ts, samples)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
while not stop:
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING:
        continue  # lo shows every packet twice: keep the delivered copy
    eth = data[14:]
    if len(eth) < 28 or eth[0] >> 4 != 4 or eth[9] != 17:
        continue
    ihl = (eth[0] & 0x0F) * 4
    udp = eth[ihl:]
    if struct.unpack("!H", udp[2:4])[0] != port:
        continue
    rtp = udp[8:]
    if len(rtp) < 12 or rtp[0] >> 6 != 2 or rtp[1] & 0x7F != 0:
        continue
    seq, ts, ssrc = struct.unpack("!HII", rtp[2:12])
    packets.append((time.time(), ssrc, seq, ts, [ULAW[b] for b in rtp[12:]]))


def dominant(samples):
    if len(samples) < 4000:
        return 0
    seg = samples[-8000:]
    def power(hz):
        re = sum(v * math.cos(2 * math.pi * hz * i / 8000) for i, v in enumerate(seg))
        im = sum(v * math.sin(2 * math.pi * hz * i / 8000) for i, v in enumerate(seg))
        return re * re + im * im
    return max(range(100, 3400, 10), key=power)


ssrcs = sorted({p[1] for p in packets})
backwards = sum(1 for a, b in zip(packets, packets[1:]) if (b[3] - a[3]) % (1 << 32) >= 1 << 31)
gaps = [b[0] - a[0] for a, b in zip(packets, packets[1:])]
audio = [v for p in packets for v in p[4]]
summary = {
    "packets": len(packets),
    "ssrcs": ["%08x" % x for x in ssrcs],
    "timestamps_backwards": backwards,
    "longest_gap_ms": round(1000 * max(gaps), 1) if gaps else None,
    "last_2s_hz": dominant(audio),
}
if mark:
    try:
        t = float(open(mark).read().strip()) / 1000.0
        # When the stream came back after the mark (the end of its longest gap after the mark,
        # if it had one), and what it carried in the second after that.
        later = [p for p in packets if p[0] >= t]
        gaps_after = [(b[0] - a[0], b[0]) for a, b in zip(later, later[1:])]
        back = max(gaps_after)[1] if gaps_after and max(gaps_after)[0] > 0.1 else (later[0][0] if later else t)
        summary["back_after_mark_ms"] = round(1000 * (back - t))
        summary["after_mark_hz"] = dominant([v for p in later if p[0] >= back for v in p[4]][:8000])
        summary["after_mark_packets"] = len(later)
    except (OSError, ValueError):
        summary["after_mark_hz"] = None
json.dump(summary, open(out, "w"))
print(json.dumps(summary))
