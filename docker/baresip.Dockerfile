# syntax=docker/dockerfile:1
# baresip agent phone for docker-compose.yml. Build context = docker/ (compose: `context: .`).

# The 1000 Hz test tone the agent sends (8 kHz mono s16: the rate PCMU/PCMA need), generated in its
# own stage so sox stays out of the final image. When the tone ends, baresip's menu module hangs up
# (checked with baresip 1.0.0: "menu: audio error (0,end of file)"), so TONE_SECS is how long the
# agent stays on a call.
FROM debian:bookworm-slim AS tone
ARG TONE_SECS=60
RUN apt-get update && apt-get install -y --no-install-recommends sox \
 && sox -n -r 8000 -c 1 -b 16 /tone1000_8k.wav synth "$TONE_SECS" sine 1000 vol 0.5

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends baresip \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10002 baresip \
 && install -d -o baresip -g baresip /var/lib/baresip/recordings
COPY --from=tone /tone1000_8k.wav /usr/share/baresip-agent/tone1000_8k.wav
COPY baresip/config baresip/accounts /etc/baresip-agent/
COPY --chmod=755 baresip/entrypoint.sh /usr/local/bin/baresip-agent
USER baresip
# Received audio is recorded here (a named volume in compose).
VOLUME /var/lib/baresip/recordings
EXPOSE 5060/udp 4444/tcp
ENTRYPOINT ["baresip-agent"]
