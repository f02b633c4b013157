#!/usr/bin/env node
// Call me back from a third-party site: a shop page on http://127.0.0.1:8081 embeds the gateway's
// widget with data-site="acme-web" and context its backend signed (HMAC-SHA256, the recipe of
// docs/signed-context.md, computed here). The visitor opens "Call me back", types a national number
// and presses "Call me"; the widget must report the callback's progress (scheduled, dialing,
// ringing, in_call, completed) and then the call's (queued, connected). Screenshots to OUT.
// Prints a JSON report; exit 0 = pass.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { launch } = require('./launch');

const SITE = process.env.SITE_DIR;
const OUT = process.env.OUT || '.';
const WAV = process.argv[2];
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

function sign(ctx, secret) {
  ctx = Object.assign({}, ctx, { c2c_exp: Math.floor(Date.now() / 1000) + 600 });
  const text = Object.keys(ctx).sort().map(k => `${k}=${typeof ctx[k] === 'string' ? ctx[k] : JSON.stringify(ctx[k])}\n`).join('');
  ctx.c2c_sig = crypto.createHmac('sha256', secret).update(text).digest('hex');
  return ctx;
}

(async () => {
  const ctx = sign({ name: 'Ann Lee', crm_id: 4711, page: '/orders/991' }, 'interop-site-secret');
  fs.writeFileSync(path.join(SITE, 'index.html'), `<!doctype html><meta charset="utf-8"><title>ACME shop</title>
<h1>ACME shop: your order #991</h1>
<script src="http://127.0.0.1:8080/widget.js" data-site="acme-web"></script>
<script>ClickToCall.setContext(${JSON.stringify(ctx)});</script>`);
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const report = { shots: [] };
  try {
    await page.goto('http://127.0.0.1:8081/');
    await page.waitForFunction(() => window.ClickToCall && window.ClickToCall.__loaded);
    await page.evaluate(() => {
      window.__cb = []; window.__states = [];
      ClickToCall.on('callback', m => window.__cb.push(m.state));
      ClickToCall.on('state', m => window.__states.push(m.state));
    });
    const shot = async (name) => {
      const f = path.join(OUT, `widget-callback-${name}.png`);
      await page.screenshot({ path: f, clip: { x: 650, y: 300, width: 350, height: 400 } });
      report.shots.push(path.basename(f));
    };
    const waitFor = async (list, want, ms) => {
      for (let t = 0; t < ms; t += 100) {
        if ((await page.evaluate((l) => window[l], list)).includes(want)) return true;
        await sleep(100);
      }
      return false;
    };
    await page.click('#clicktocall-widget >> text=Call us');
    await page.click('#clicktocall-widget >> text=Call me back');
    await page.fill('#clicktocall-widget input', '(555) 010-2000');
    await page.click('#clicktocall-widget .cbgo');
    report.dialing = await waitFor('__cb', 'dialing', 5000);
    report.ringing = await waitFor('__cb', 'ringing', 5000);
    await shot('ringing');
    report.inCall = await waitFor('__cb', 'in_call', 8000);
    await shot('in_call');
    report.completed = await waitFor('__cb', 'completed', 15000);
    report.queued = await waitFor('__states', 'queued', 5000);
    report.connected = await waitFor('__states', 'connected', 8000);
    await sleep(500);
    await shot('completed');
    report.ended = await waitFor('__states', 'ended', 20000);
    report.statusText = await page.evaluate(() => document.querySelector('#clicktocall-widget').shadowRoot.querySelector('.status').textContent);
    report.callbackStates = await page.evaluate(() => window.__cb);
    report.callStates = await page.evaluate(() => window.__states);
  } catch (e) {
    report.error = String(e && e.stack || e);
  }
  await close();
  report.pass = !report.error && report.dialing && report.ringing && report.inCall && report.completed
    && report.queued && report.connected && report.callbackStates[0] === 'scheduled';
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
