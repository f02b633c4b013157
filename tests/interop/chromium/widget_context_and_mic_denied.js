#!/usr/bin/env node
// Issue 6 scenarios 3, 4 and 5 with real Chromium on the gateway's demo page:
//  A. the widget's call (page context set by the demo page) goes through the IVR (keypad 2) to a SIPp
//     agent that checks the context headers; "Hang up" in the widget sends the agent a BYE.
//  B. with the microphone denied, the widget shows its message and opens no WebSocket.
// Prints a JSON report; exit 0 = pass (the SIPp agent's own checks are judged by run.sh).
'use strict';
const path = require('path');
const { launch } = require('./launch');

const GATEWAY = process.env.GATEWAY || '127.0.0.1:8080';
const WAV = process.argv[2];
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
async function browser(fakeUi) {
  const { page, close } = await launch(WAV, { fakeUi });
  await page.addInitScript(() => {
    window.__ws = 0;
    const W = window.WebSocket;
    window.WebSocket = function (...a) { window.__ws++; return new W(...a); };
    window.WebSocket.prototype = W.prototype;
    window.WebSocket.OPEN = 1;
  });
  await page.goto(`http://${GATEWAY}/`);
  await page.waitForFunction(() => window.ClickToCall && window.ClickToCall.__loaded);
  await page.evaluate(() => { window.__states = []; ClickToCall.on('state', s => window.__states.push(s.state)); });
  return { page, close };
}

async function waitState(page, want, ms) {
  for (let t = 0; t < ms; t += 100) {
    if ((await page.evaluate(() => window.__states)).includes(want)) return true;
    await sleep(100);
  }
  return false;
}

(async () => {
  const report = {};
  try {
    const a = await browser(true);
    await a.page.click('#clicktocall-widget >> text=Call us');
    await a.page.click('#clicktocall-widget >> text=Call now in the browser');
    report.ivr = await waitState(a.page, 'ivr', 5000);
    await sleep(1000);
    await a.page.click('#clicktocall-widget .keys >> text="2"');
    report.connected = await waitState(a.page, 'connected', 10000);
    await sleep(2000);
    await a.page.click('#clicktocall-widget >> text=Hang up');
    report.ended = await waitState(a.page, 'ended', 4000);
    report.statesA = await a.page.evaluate(() => window.__states);
    await a.close();

    // B: no fake-UI flag: headless Chromium denies the microphone prompt.
    const b = await browser(false);
    await b.page.click('#clicktocall-widget >> text=Call us');
    await b.page.click('#clicktocall-widget >> text=Call now in the browser');
    await sleep(1500);
    report.deniedMessage = await b.page.evaluate(() => document.querySelector('#clicktocall-widget').shadowRoot.querySelector('.msg').textContent);
    report.webSocketsOpened = await b.page.evaluate(() => window.__ws);
    await b.page.screenshot({ path: path.join(process.env.OUT || '.', 'widget-mic-denied.png') });
    await b.close();
  } catch (e) {
    report.error = String(e);
  }
  report.pass = !report.error && report.ivr && report.connected && report.ended
    && /Microphone access was denied/.test(report.deniedMessage || '') && report.webSocketsOpened === 0;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
