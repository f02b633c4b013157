#!/usr/bin/env bash
# Regenerates the gateway's bundled default IVR prompts in static/prompts/ (embedded into the
# binary by build.rs, like everything under static/, so keep only the WAVs there).
#
# Requirements: espeak-ng (Debian/Ubuntu: apt-get install -y espeak-ng) and python3 (standard
# library only; the resampler, trimmer and music synthesizer live in tools/prompts.py).
#
# Usage: tools/make-prompts.sh            (from anywhere; writes <repo>/static/prompts/*.wav)
#
# Every file is RIFF PCM, 16-bit signed little-endian, mono, 8000 Hz (what the gateway plays, so
# it never has to resample a bundled prompt). Speech: espeak-ng, voice en-us at 150 wpm, written
# at espeak's native 22050 Hz, then Kaiser-windowed-sinc low-pass (3.5 kHz) + exact rational
# resampling to 8 kHz, silence trimmed to ~100 ms each side, peak normalized to -3 dBFS.
# moh.wav is not speech: ~16 s of soft sine chords/arpeggios (C Am Dm F) synthesized in python,
# about -12 dBFS RMS, zero at both ends so it loops without a click; no note is near 440 Hz or
# 1000 Hz (the tests use those as marker tones).
#
# Output is deterministic for a given espeak-ng version (made with espeak-ng 1.51); a different
# espeak-ng release may pronounce or time words slightly differently.
# To change a prompt, edit its text below and re-run; position.wav is followed at run time by one
# of n1..n9 / n10plus, so keep those as single short words.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../static/prompts"
py="$here/prompts.py"
voice=(-v en-us -s 150)

for tool in espeak-ng python3; do
    command -v "$tool" >/dev/null || { echo "make-prompts: $tool is required" >&2; exit 1; }
done

mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say() { # say NAME TEXT
    echo "  $1.wav: $2"
    espeak-ng "${voice[@]}" -w "$tmp/$1.wav" -- "$2"
    python3 "$py" speech "$tmp/$1.wav" "$out/$1.wav"
}

say welcome   "Welcome to ACME. For sales, press 1. For support, press 2. To hear these options again, press 9."
say invalid   "Sorry, that is not a valid choice."
say goodbye   "Thank you for calling. Goodbye."
say queued    "All our agents are busy. Please hold, and the next available agent will be with you."
say position  "You are caller number"
numbers=(one two three four five six seven eight nine)
for i in "${!numbers[@]}"; do
    say "n$((i + 1))" "${numbers[$i]}"
done
say n10plus   "ten or more"
say no_agents "Sorry, no agent is available right now. Please try again later. Goodbye."
say max_wait  "We are sorry to keep you waiting. Please try again later. Goodbye."
say transfer  "Please hold while we transfer your call."
say callback  "This is ACME returning your call. To speak to an agent, press 1."
say demo_agent "Hello, this is the clicktocall demo agent. Everything you say now is echoed back to you."

echo "  moh.wav: music on hold (synthesized)"
python3 "$py" moh "$out/moh.wav"

python3 "$py" check "$out"/*.wav
