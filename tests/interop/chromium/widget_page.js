// Shared by the widget interop scripts: the gateway's demo page with the real widget, and what a
// test reads from it (state, link, status text, the call's audio peak, packets, candidate pair),
// plus the REST API on 127.0.0.1:8080.
'use strict';
const http = require('http');

const sleep = (ms) => new Promise(r => setTimeout(r, ms));

// GET path on the REST API (JSON).
function api(p) {
  return new Promise((ok, fail) => {
    http.get({ host: '127.0.0.1', port: 8080, path: p, headers: { authorization: 'Bearer interop-key' } }, (res) => {
      let body = ''; res.on('data', d => { body += d; }); res.on('end', () => { try { ok(JSON.parse(body)); } catch (e) { fail(e); } });
    }).on('error', fail);
  });
}

// Polls cond() every 50 ms for up to ms: the time it took, or null.
async function waitFor(cond, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) { if (await cond()) return Date.now() - t0; await sleep(50); }
  return null;
}

const near440 = (p) => !!p && Math.abs(p.hz - 440) <= 25 && p.db > -70;

// Opens the demo page at host and installs the page-side helpers.
async function openWidget(page, host) {
  await page.goto(`http://${host}/`);
  await page.waitForFunction(() => window.ClickToCall && window.ClickToCall.__loaded);
  await page.evaluate(() => {
    window.__states = []; ClickToCall.on('state', s => window.__states.push(s.state));
    window.__warnings = []; ClickToCall.on('warning', w => window.__warnings.push(w.warnings.join(' ')));
    window.listen = () => {
      const track = ClickToCall.debug().pc.getReceivers()[0].track;
      window.__ctx = new AudioContext();
      window.__an = window.__ctx.createAnalyser(); window.__an.fftSize = 8192; window.__an.smoothingTimeConstant = 0;
      window.__ctx.createMediaStreamSource(new MediaStream([track])).connect(window.__an);
    };
    window.peak = () => {
      const bins = new Float32Array(__an.frequencyBinCount); __an.getFloatFrequencyData(bins);
      let best = 1; for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
      return { hz: Math.round(best * __ctx.sampleRate / __an.fftSize), db: Math.round(bins[best]) };
    };
    window.inbound = async () => {
      let n = 0; (await ClickToCall.debug().pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'audio') n = r.packetsReceived; });
      return n;
    };
    window.pair = async () => {
      const stats = await ClickToCall.debug().pc.getStats(); let p = null; const c = {};
      stats.forEach(r => {
        if (r.type === 'local-candidate' || r.type === 'remote-candidate') c[r.id] = r;
        if (r.type === 'transport' && r.selectedCandidatePairId) p = stats.get(r.selectedCandidatePairId);
      });
      return p ? `${c[p.localCandidateId].address}:${c[p.localCandidateId].port} -> ${c[p.remoteCandidateId].address}:${c[p.remoteCandidateId].port}` : null;
    };
    // A second socket that tries to resume with `token`: the gateway's reply.
    window.tryResume = (url, token) => new Promise((ok) => {
      const w = new WebSocket(url);
      w.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        if (msg.type === 'hello') w.send(JSON.stringify({ type: 'resume', v: 1, token }));
        else { w.close(); ok(msg); }
      };
      setTimeout(() => ok({ type: 'timeout' }), 5000);
    });
  });
  return {
    // The widget's host attributes and status text.
    host: () => page.evaluate(() => {
      const h = document.querySelector('#clicktocall-widget');
      return { state: h.getAttribute('data-state'), link: h.getAttribute('data-link'),
        warning: h.getAttribute('data-warning'), status: h.shadowRoot.querySelector('.status').textContent };
    }),
    states: () => page.evaluate(() => window.__states),
    // Call us → Call now in the browser → "Support" in the menu → connected (within ms).
    callSupport: async (ms) => {
      await page.click('#clicktocall-widget >> text=Call us');
      await page.click('#clicktocall-widget >> text=Call now in the browser');
      await waitFor(() => page.evaluate(() =>
        document.querySelector('#clicktocall-widget').shadowRoot.querySelectorAll('.menu button[data-digit]').length >= 2), 6000);
      await sleep(1500); // the prompt plays once media flows: a button pressed now is heard
      await page.click('#clicktocall-widget .menu >> text=Support');
      return waitFor(() => page.evaluate(() => __states.includes('connected')), ms);
    },
  };
}

module.exports = { api, waitFor, sleep, near440, openWidget };
