#!/usr/bin/env python3
"""What a baresip agent heard: its sndfile module writes dump-...-dec.wav per call into DIR.
Takes the last recording, one second from FRACTION of its length, and checks it holds HZ (the
dominant frequency within 10 Hz) at an RMS over 300, in a recording over two seconds long.
usage: baresip_heard.py DIR HZ FRACTION"""
import glob, math, struct, sys, wave

directory, want, fraction = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
files = sorted(glob.glob(directory + "/*-dec.wav"))
assert files, "baresip recorded nothing"
w = wave.open(files[-1])
rate = w.getframerate()
x = struct.unpack("<%dh" % w.getnframes(), w.readframes(w.getnframes()))
assert len(x) > rate * 2, "recording is %d samples" % len(x)
start = int(len(x) * fraction)
seg = x[start:start + rate]
rms = math.sqrt(sum(v * v for v in seg) / len(seg))


def power(hz):
    re = sum(v * math.cos(2 * math.pi * hz * i / rate) for i, v in enumerate(seg))
    im = sum(v * math.sin(2 * math.pi * hz * i / rate) for i, v in enumerate(seg))
    return re * re + im * im


best = max(range(100, 3400, 10), key=power)
print("agent recording %s: %d Hz, %.0f samples (%.1f s), rms %.0f, dominant %d Hz" % (
    files[-1].split("/")[-1], rate, len(x), len(x) / rate, rms, best))
assert rms > 300 and abs(best - want) <= 10, "the agent did not hear %d Hz" % want
