#!/usr/bin/env node
// Real headless Chromium (fake microphone playing a 440 Hz WAV) answered by the gateway's media
// engine (clicktocall-bench gateway, control on CONTROL) and bridged to a SIPp -rtp_echo agent on
// 127.0.0.1:ECHO_PORT. The browser must hear its tone come back through the gateway and the agent:
// getStats shows inbound audio with level, and a Web Audio analyser finds the peak near 440 Hz.
// Prints a JSON report; exit 0 = pass.
'use strict';
const http = require('http');
const net = require('net');
const { launch } = require('./launch');

const CONTROL = (process.env.CONTROL || '127.0.0.1:7300').split(':');
const ECHO_PORT = process.env.ECHO_PORT || '6000';
const WAV = process.argv[2];

const PAGE = `<!doctype html><meta charset="utf-8"><title>media interop</title><body><script>
let pc, analyser, ctx;
async function offer() {
  pc = new RTCPeerConnection();
  const mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  mic.getTracks().forEach(t => pc.addTrack(t, mic));
  pc.ontrack = (e) => {
    const stream = e.streams[0] || new MediaStream([e.track]);
    const el = document.createElement('audio'); el.autoplay = true; el.srcObject = stream; document.body.appendChild(el);
    ctx = new AudioContext();
    analyser = ctx.createAnalyser(); analyser.fftSize = 8192; analyser.smoothingTimeConstant = 0;
    ctx.createMediaStreamSource(stream).connect(analyser);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    const t = setTimeout(done, 3000);
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); done(); } };
  });
  // Loopback host candidates only: the test must not send anywhere else.
  return pc.localDescription.sdp.split('\\r\\n').filter(l => !l.startsWith('a=candidate:') || l.includes(' 127.0.0.1 ')).join('\\r\\n');
}
async function answer(sdp) { await pc.setRemoteDescription({ type: 'answer', sdp }); }
async function measure() {
  const out = { connection: pc.connectionState };
  (await pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.inbound = { packetsReceived: r.packetsReceived, audioLevel: r.audioLevel, totalAudioEnergy: r.totalAudioEnergy };
    if (r.type === 'outbound-rtp' && r.kind === 'audio') out.outbound = { packetsSent: r.packetsSent };
  });
  if (analyser) {
    const bins = new Float32Array(analyser.frequencyBinCount); analyser.getFloatFrequencyData(bins);
    let best = 1; for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    out.peakHz = Math.round(best * ctx.sampleRate / analyser.fftSize); out.peakDb = bins[best];
  }
  return out;
}
</script></body>`;

function control(line) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(CONTROL[1]), CONTROL[0], () => sock.write(line + '\n'));
    let buf = '';
    sock.on('data', (d) => { buf += d; if (buf.includes('\n')) { sock.end(); resolve(buf.split('\n')[0]); } });
    sock.on('error', reject);
  });
}

(async () => {
  const server = http.createServer((_, res) => { res.setHeader('content-type', 'text/html'); res.end(PAGE); });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const { page, close } = await launch(WAV);
  const report = {};
  try {
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const offer = await page.evaluate(() => offer());
    const reply = await control(`CALL ${ECHO_PORT} ${offer.replace(/\r\n/g, '\\n')}`);
    if (!reply.startsWith('ANSWER ')) throw new Error(`gateway refused: ${reply}`);
    const sdp = reply.split(' ').slice(2).join(' ').replace(/\\n/g, '\r\n');
    report.answerCodecs = sdp.split('\r\n').filter(l => l.startsWith('a=rtpmap')).map(l => l.split(' ')[1]);
    await page.evaluate((s) => answer(s), sdp);
    await page.waitForTimeout(6000);
    report.browser = await page.evaluate(() => measure());
  } catch (e) {
    report.error = String(e);
  }
  await close();
  server.close();
  const b = report.browser || {};
  report.pass = !report.error && b.connection === 'connected'
    && b.inbound && b.inbound.packetsReceived > 150 && b.inbound.audioLevel > 0.01
    && Math.abs(b.peakHz - 440) <= 25;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
