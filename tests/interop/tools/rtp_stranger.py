#!/usr/bin/env python3
"""A stranger on the media path: sends RTP/PCMU (a sine tone, 50 packets/s, its own SSRC) from
SOURCE_IP to the port named in PORT_FILE on 127.0.0.1, for SECONDS (waits up to 2 s for the file).
usage: rtp_stranger.py SOURCE_IP PORT_FILE HZ SECONDS"""
import math, os, socket, struct, sys, time

src, port_file, hz, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
for _ in range(40):
    if os.path.exists(port_file) and open(port_file).read().strip():
        break
    time.sleep(0.05)
port = int(open(port_file).read().strip())


def ulaw(sample):
    sign = 0x80 if sample < 0 else 0
    mag = min(abs(sample), 32635) + 0x84
    exponent = min(max(0, mag.bit_length() - 8), 7)
    return ~(sign | (exponent << 4) | ((mag >> (exponent + 3)) & 0x0F)) & 0xFF


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
seq, n = 1, 0
end = time.time() + seconds
while time.time() < end:
    payload = bytes(ulaw(int(12000 * math.sin(2 * math.pi * hz * (n + i) / 8000))) for i in range(160))
    s.sendto(struct.pack("!BBHII", 0x80, 0, seq, n, 0x5757) + payload, ("127.0.0.1", port))
    seq, n = (seq + 1) & 0xFFFF, n + 160
    time.sleep(0.02)
