#!/usr/bin/env python3
"""Writes a pcap of RTP/PCMU (PT 0, 20 ms packets) carrying a sine tone, for SIPp's
<exec play_pcap_audio="..."/> (SIPp rewrites the addresses to the remote SDP's).
usage: tone_pcap.py HZ SECONDS out.pcap"""
import math
import struct
import sys


def ulaw(sample):
    """G.711 mu-law encoding of one 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    mag = min(abs(sample), 32635) + 0x84
    exponent = max(0, mag.bit_length() - 8)
    exponent = min(exponent, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def main(hz, seconds, path):
    addr = bytes([127, 0, 0, 1])
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet link type
        n = 0
        for packet in range(int(seconds * 50)):
            samples = [int(12000 * math.sin(2 * math.pi * hz * (n + i) / 8000)) for i in range(160)]
            n += 160
            payload = bytes(ulaw(s) for s in samples)
            rtp = struct.pack("!BBHII", 0x80, 0, packet & 0xFFFF, packet * 160, 0x7E57) + payload
            udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), packet & 0xFFFF, 0, 64, 17, 0, addr, addr)
            ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
            frame = b"\0" * 12 + b"\x08\x00" + ip + udp
            t = packet * 0.02
            out.write(struct.pack("<IIII", int(t), int(round((t - int(t)) * 1e6)), len(frame), len(frame)) + frame)


if __name__ == "__main__":
    main(float(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
