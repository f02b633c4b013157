#!/usr/bin/env node
// Real headless Chromium (fake microphone playing 440 Hz) places a call through the gateway's /ws
// widget protocol with a CRM context, hears the IVR prompt (inbound audio level rises only after the
// connection is up), presses 2 with RTCDTMFSender (RFC 4733), waits in "support", and is connected to
// a SIPp agent that echoes RTP: the analyser then finds the browser's own 440 Hz coming back. Hangs
// up from the page and waits for `ended`. Prints a JSON report; exit 0 = pass.
'use strict';
const http = require('http');
const { launch } = require('./launch');

const GATEWAY = process.env.GATEWAY || '127.0.0.1:8080';
const WAV = process.argv[2];

const PAGE = `<!doctype html><meta charset="utf-8"><title>call interop</title><body><script>
let pc, analyser, ctx, ws, states = [], errors = [];
function level() {
  if (!analyser) return { peakHz: 0, peakDb: -200 };
  const bins = new Float32Array(analyser.frequencyBinCount); analyser.getFloatFrequencyData(bins);
  let best = 1; for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
  return { peakHz: Math.round(best * ctx.sampleRate / analyser.fftSize), peakDb: bins[best] };
}
async function inboundLevel() {
  let out = 0;
  (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'audio') out = r.audioLevel || 0; });
  return out;
}
async function call(url, context) {
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
  const sdp = pc.localDescription.sdp.split('\\r\\n').filter(l => !l.startsWith('a=candidate:') || l.includes(' 127.0.0.1 ')).join('\\r\\n');
  ws = new WebSocket(url);
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  const answered = new Promise((ok) => {
    ws.onmessage = async (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === 'answer') { await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp }); ok(); }
      if (msg.type === 'state') states.push(msg);
      if (msg.type === 'error') errors.push(msg);
    };
  });
  ws.send(JSON.stringify({ type: 'call', v: 1, sdp, context }));
  await answered;
}
function press(d) {
  const sender = pc.getSenders().find(s => s.dtmf);
  if (sender && sender.dtmf.canInsertDTMF) { sender.dtmf.insertDTMF(d, 150, 70); return 'rfc4733'; }
  ws.send(JSON.stringify({ type: 'dtmf', digits: d })); return 'message';
}
function hangup() { ws.send(JSON.stringify({ type: 'hangup' })); }
</script></body>`;

const sleep = (ms) => new Promise(r => setTimeout(r, ms));

(async () => {
  const server = http.createServer((_, res) => { res.setHeader('content-type', 'text/html'); res.end(PAGE); });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const { page, close } = await launch(WAV);
  const report = {};
  const states = async (page) => (await page.evaluate(() => states)).map(s => s.state);
  const waitState = async (page, want, ms) => {
    for (let t = 0; t < ms; t += 100) { if ((await states(page)).includes(want)) return true; await sleep(100); }
    return false;
  };
  try {
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.evaluate(([url, ctx]) => call(url, ctx), [`ws://${GATEWAY}/ws`,
      { name: 'Ann Lee', crm_id: 4711, page: '/cart', cart: '2 items' }]);
    report.ivr = await waitState(page, 'ivr', 3000);
    await sleep(2500);
    report.promptLevel = await page.evaluate(() => inboundLevel());
    report.dtmf = await page.evaluate(() => press('2'));
    report.queued = await waitState(page, 'queued', 4000);
    if (!report.queued && report.dtmf === 'rfc4733') {
      report.dtmfFallback = await page.evaluate(() => { ws.send(JSON.stringify({ type: 'dtmf', digits: '2' })); return true; });
      report.queued = await waitState(page, 'queued', 3000);
    }
    report.connected = await waitState(page, 'connected', 8000);
    if (process.env.VANISH) {
      // The fault test freezes this browser now (SIGSTOP: no FIN, no STUN, no RTP) and watches the
      // gateway notice; the harness kills us afterwards.
      require('fs').writeFileSync(require('path').join(process.env.OUT || '.', 'connected'), JSON.stringify(report));
      await sleep(120000);
    }
    await sleep(4000);
    report.echo = await page.evaluate(() => level());
    report.echoLevel = await page.evaluate(() => inboundLevel());
    await page.evaluate(() => hangup());
    report.ended = await waitState(page, 'ended', 4000);
    report.states = await page.evaluate(() => states);
    report.errors = await page.evaluate(() => errors);
  } catch (e) {
    report.error = String(e);
  }
  await close();
  server.close();
  report.pass = !report.error && report.ivr && report.promptLevel > 0.01 && report.queued
    && report.connected && Math.abs((report.echo || {}).peakHz - 440) <= 25 && report.ended;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
