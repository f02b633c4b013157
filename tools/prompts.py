#!/usr/bin/env python3
"""Helpers for tools/make-prompts.sh (python3 standard library only, deterministic).

    prompts.py speech IN.wav OUT.wav   espeak-ng WAV (any rate, mono 16-bit) -> 8 kHz prompt:
                                       windowed-sinc (Kaiser) low-pass + rational resampling,
                                       silence trimmed to ~100 ms each side, peak -3 dBFS.
    prompts.py moh OUT.wav             ~16 s loopable music on hold at 8 kHz (sine chords and
                                       arpeggios, ~-12 dBFS RMS, starts and ends at zero).
    prompts.py check FILE.wav...       prints rate/channels/bits, duration, peak and RMS of each.

Every output is RIFF PCM, 16-bit signed little-endian, mono, 8000 Hz.
"""

import array
import math
import operator
import sys
import wave
from collections import deque
from fractions import Fraction

RATE = 8000
FULL = 32767.0


# ---------------------------------------------------------------------------------------------
# WAV I/O


def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
            raise SystemExit(f"{path}: expected 16-bit PCM")
        ch, rate, n = w.getnchannels(), w.getframerate(), w.getnframes()
        data = array.array("h", w.readframes(n))
    if sys.byteorder == "big":
        data.byteswap()
    if ch != 1:  # mix down (espeak-ng writes mono; just in case)
        data = array.array("h", (int(sum(data[i:i + ch]) / ch) for i in range(0, len(data), ch)))
    return [float(s) for s in data], rate


def write_wav(path, samples):
    out = array.array("h", (max(-32768, min(32767, int(round(s)))) for s in samples))
    if sys.byteorder == "big":
        out.byteswap()
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(out.tobytes())


# ---------------------------------------------------------------------------------------------
# Resampling: polyphase windowed sinc


def bessel_i0(x):
    total, term, k = 1.0, 1.0, 1
    while term > 1e-12 * total:
        term *= (x / (2.0 * k)) ** 2
        total += term
        k += 1
    return total


def resample(x, rate_in, rate_out=RATE, cutoff_hz=3500.0, half_width=64, beta=8.0):
    """Band-limits to `cutoff_hz` (Kaiser-windowed sinc, ~80 dB stop band) and resamples by the
    exact rational ratio rate_out/rate_in. `half_width` is in input samples."""
    if rate_in == rate_out:
        return list(x)
    ratio = Fraction(rate_out, rate_in)
    up, down = ratio.numerator, ratio.denominator  # output n sits at input time n*down/up
    fc = min(cutoff_hz, 0.45 * min(rate_in, rate_out)) / rate_in  # cycles per input sample
    i0b = bessel_i0(beta)
    kernels = []
    for phase in range(up):
        frac = phase / up
        taps = []
        for k in range(-half_width + 1, half_width + 1):
            d = k - frac
            u = d / half_width
            win = bessel_i0(beta * math.sqrt(1.0 - u * u)) / i0b if abs(u) < 1.0 else 0.0
            arg = 2.0 * fc * d
            sinc = 1.0 if d == 0 else math.sin(math.pi * arg) / (math.pi * arg)
            taps.append(2.0 * fc * sinc * win)
        gain = sum(taps)
        kernels.append([t / gain for t in taps])  # unity gain at DC for every phase
    pad = [0.0] * (half_width + 1)
    xp = pad + list(x) + pad
    n_out = (len(x) * up) // down
    out = []
    for n in range(n_out):
        i, phase = divmod(n * down, up)
        start = i - half_width + 1 + len(pad)
        out.append(sum(map(operator.mul, kernels[phase], xp[start:start + 2 * half_width])))
    return out


# ---------------------------------------------------------------------------------------------
# Speech prompts


def trim_silence(x, keep_s=0.100, frame_s=0.010, floor_db=-45.0):
    """Keeps `keep_s` of audio before the first and after the last frame whose RMS is within
    `floor_db` of the loudest frame (padding with zeros if the source has less)."""
    frame = int(RATE * frame_s)
    rms = [math.sqrt(sum(s * s for s in x[i:i + frame]) / frame) for i in range(0, len(x) - frame + 1, frame)]
    if not rms or max(rms) == 0.0:
        raise SystemExit("prompt is silent")
    floor = max(rms) * 10 ** (floor_db / 20.0)
    active = [i for i, r in enumerate(rms) if r > floor]
    first, last = active[0] * frame, (active[-1] + 1) * frame
    keep = int(RATE * keep_s)
    lead = [0.0] * max(0, keep - first)
    tail = [0.0] * max(0, last + keep - len(x))
    return lead + x[max(0, first - keep):min(len(x), last + keep)] + tail


def fade_edges(x, fade_s=0.010):
    n = min(int(RATE * fade_s), len(x) // 2)
    y = list(x)
    for i in range(n):
        g = 0.5 - 0.5 * math.cos(math.pi * i / n)
        y[i] *= g
        y[-1 - i] *= g
    if y:
        y[0] = y[-1] = 0.0
    return y


def normalize_peak(x, peak_dbfs=-3.0):
    peak = max(abs(s) for s in x)
    g = FULL * 10 ** (peak_dbfs / 20.0) / peak
    return [s * g for s in x]


def speech(src, dst):
    x, rate = read_wav(src)
    y = resample(x, rate)
    y = trim_silence(y)
    y = fade_edges(y)
    y = normalize_peak(y)
    write_wav(dst, y)


# ---------------------------------------------------------------------------------------------
# Music on hold


def moh(dst, seconds=16.0, rms_dbfs=-12.0):
    """Four 4 s chords, C - Am - Dm - F (F -> C closes the loop), each a soft sustained pad plus
    an arpeggio of decaying plucks, rendered circularly so the end flows into the start.
    All notes lie in 300-1200 Hz and keep >= 80 Hz away from 440 Hz and 1000 Hz (the tests' tone
    frequencies): no A4, no B4/B5, no Bb/C6."""
    n = int(RATE * seconds)
    buf = [0.0] * n
    E4, F4 = 329.63, 349.23
    C5, D5, E5, F5, G5, A5 = 523.25, 587.33, 659.26, 698.46, 783.99, 880.00
    D6 = 1174.66
    chords = [
        ([E4, C5, E5, G5], [C5, E5, G5, E5, C5, G5, E5, G5]),  # C  (1st inversion)
        ([E4, C5, E5, A5], [A5, E5, C5, E5, A5, C5, E5, C5]),  # Am
        ([F4, D5, F5, A5], [D5, F5, A5, D6, A5, F5, D5, F5]),  # Dm
        ([F4, C5, F5, A5], [C5, F5, A5, F5, C5, A5, F5, A5]),  # F
    ]
    seg = n // len(chords)
    xfade = int(0.8 * RATE)
    two_pi = 2.0 * math.pi

    voices = [0]

    def add(start, length, env, freq, amp, detune=0.0):
        # Spread the starting phases (golden-ratio steps) so voices don't peak together.
        voices[0] += 1
        p1 = two_pi * ((voices[0] * 0.6180339887) % 1.0)
        p2 = two_pi * ((voices[0] * 0.4142135624) % 1.0)
        w1 = two_pi * freq / RATE
        w2 = two_pi * (freq + detune) / RATE
        for j in range(length):
            e = env(j)
            if e:
                v = math.sin(w1 * j + p1)
                if detune:  # a quieter, slightly detuned twin: slow, shallow shimmer
                    v = 0.75 * v + 0.25 * math.sin(w2 * j + p2)
                buf[(start + j) % n] += amp * e * v

    for ci, (pad, arp) in enumerate(chords):
        # Pad: raised-cosine crossfades of 0.8 s centred on the chord boundaries.
        start = ci * seg - xfade // 2
        length = seg + xfade

        def pad_env(j, length=length):
            if j < xfade:
                return 0.5 - 0.5 * math.cos(math.pi * j / xfade)
            if j >= length - xfade:
                return 0.5 - 0.5 * math.cos(math.pi * (length - j) / xfade)
            return 1.0

        for k, f in enumerate(pad):
            add(start, length, pad_env, f, 0.16 if k == 0 else 0.11, detune=0.35)
        # Arpeggio: one pluck every 0.5 s, 30 ms attack, ~0.4 s decay, 0.2 s release to zero.
        step = seg // len(arp)
        ring, att, rel, tau = int(1.2 * RATE), int(0.03 * RATE), int(0.2 * RATE), 0.4 * RATE

        def pluck_env(j):
            e = math.exp(-j / tau)
            if j < att:
                e *= 0.5 - 0.5 * math.cos(math.pi * j / att)
            if j >= ring - rel:
                e *= 0.5 - 0.5 * math.cos(math.pi * (ring - j) / rel)
            return e

        for k, f in enumerate(arp):
            add(ci * seg + k * step, ring, pluck_env, f, 0.22 if k % 4 == 0 else 0.17)

    # Level: RMS to target, the few chord-plus-pluck peaks above -2 dBFS tamed by a smooth
    # (10 ms) gain envelope rather than clipping; two passes to land on the RMS target.
    y = buf
    for _ in range(2):
        rms = math.sqrt(sum(s * s for s in y) / n)
        g = FULL * 10 ** (rms_dbfs / 20.0) / rms
        y = limit([s * g for s in y], FULL * 10 ** (-2.0 / 20.0))
    write_wav(dst, fade_edges(y, fade_s=0.020))


def limit(x, ceiling, half=80):
    """Gain-rides `x` so |x| <= ceiling: the per-sample gain needed, min-filtered over
    +-`half` samples, then moving-averaged over the same span (never above what is needed,
    and slow enough, 20 ms, not to add audible distortion). Circular, like the music."""
    n = len(x)
    need = [min(1.0, ceiling / abs(s)) if s else 1.0 for s in x]
    if min(need) >= 1.0:
        return list(x)
    span = 2 * half + 1
    # Sliding minimum (monotonic deque) over the circular signal.
    ext = need[-half:] + need + need[:half]
    lo, dq = [], deque()
    for i, v in enumerate(ext):
        while dq and ext[dq[-1]] >= v:
            dq.pop()
        dq.append(i)
        if dq[0] <= i - span:
            dq.popleft()
        if i >= span - 1:
            lo.append(ext[dq[0]])
    # Moving average of the minimum, circular.
    ext = lo[-half:] + lo + lo[:half]
    acc = sum(ext[:span])
    gain = []
    for i in range(n):
        gain.append(acc / span)
        if i + span < len(ext):
            acc += ext[i + span] - ext[i]
    return [s * min(1.0, gv) for s, gv in zip(x, gain)]


# ---------------------------------------------------------------------------------------------


def check(paths):
    ok = True
    for p in paths:
        with wave.open(p, "rb") as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = array.array("h", w.readframes(n))
        if sys.byteorder == "big":
            data.byteswap()
        good = (ch, width, rate) == (1, 2, RATE)
        ok &= good
        peak = max(abs(s) for s in data) if data else 0
        rms = math.sqrt(sum(s * s for s in data) / len(data)) if data else 0.0
        db = lambda v: 20 * math.log10(v / FULL) if v else float("-inf")
        print(f"{p.rsplit('/', 1)[-1]:<14} {'ok ' if good else 'BAD'} {rate} Hz {ch} ch {8 * width} bit "
              f"{n / rate:6.2f} s  peak {db(peak):6.1f} dBFS  rms {db(rms):6.1f} dBFS")
    if not ok:
        raise SystemExit("some files are not 8 kHz mono 16-bit")


def main(argv):
    if len(argv) == 3 and argv[0] == "speech":
        speech(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "moh":
        moh(argv[1])
    elif len(argv) >= 2 and argv[0] == "check":
        check(argv[1:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
