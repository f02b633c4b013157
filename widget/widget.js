/*! clicktocall widget — embed with
 *   <script src="https://gw.example.com/widget.js" data-queue="support" async></script>
 * API: ClickToCall.setContext({...}), ClickToCall.open(), ClickToCall.close(),
 *      ClickToCall.on('state', fn) — fn({state, position, estimated_wait_secs, reason}).
 * No dependencies. Styles live in a Shadow DOM; theme with CSS custom properties on the host:
 *   --c2c-accent, --c2c-bg, --c2c-fg, --c2c-radius, --c2c-font.
 * Protocol: docs/protocol.md (version 1). */
(function () {
  'use strict';
  if (window.ClickToCall && window.ClickToCall.__loaded) return;

  var script = document.currentScript ||
    document.querySelector('script[src$="widget.js"]');
  var cfg = (script && script.dataset) || {};
  var base = script ? new URL(script.src, location.href) : new URL(location.href);
  var wsUrl = cfg.gateway || ((base.protocol === 'https:' ? 'wss://' : 'ws://') + base.host + '/ws');
  if (cfg.site) wsUrl += (wsUrl.indexOf('?') < 0 ? '?' : '&') + 'site=' + encodeURIComponent(cfg.site);

  // Every user-visible string, for translation: ClickToCall.strings.xx = '...'.
  var S = {
    button: 'Call us', title: 'Talk to us', callBrowser: 'Call now in the browser',
    callBack: 'Call me back', phone: 'Your phone number', callBackGo: 'Call me',
    callBackNA: 'Call-back is not available here. Please call in the browser.',
    cb_scheduled: 'Thanks! We will call you shortly.', cb_later: 'Thanks! We will call you at {t}.',
    cb_retry: 'We could not reach you; we will try again at {t}.',
    cb_dialing: 'Calling your phone…', cb_ringing: 'Your phone is ringing: please answer.',
    cb_in_call: 'Please answer your phone and press 1.', cb_completed: 'You are in line: please stay on your phone.',
    cb_unconfirmed: 'We called but nobody pressed 1. Please try again.', cb_cancelled: 'Call-back cancelled.',
    cb_failed: 'We could not reach you ({r}).', cbReason_busy: 'busy', cbReason_no_answer: 'no answer',
    cbReason_rejected: 'declined', cbReason_invalid_number: 'not a valid number', cbReason_trunk_error: 'network error',
    badNumber: 'Please enter a valid phone number.', numberRefused: 'We cannot call this number.',
    tooMany: 'Too many requests. Please try again later.',
    connecting: 'Connecting…', ivr: 'In the menu: use the keypad', queued: 'Waiting for an agent',
    position: 'You are number {n} in line', wait: 'about {m} min', ringing: 'Calling an agent…',
    connected: 'Connected', on_hold: 'On hold', transferring: 'Transferring…', ended: 'Call ended',
    mute: 'Mute', unmute: 'Unmute', hangup: 'Hang up', close: 'Close', keypad: 'Keypad',
    micDenied: 'Microphone access was denied. Allow it in your browser to call.',
    noWebrtc: 'This browser cannot place calls (no WebRTC).',
    unreachable: 'The call service is unreachable. Please try again later.',
    noAgents: 'Nobody is available right now. Please try again later.',
    lost: 'The connection was lost.',
    reason_agent_hangup: 'The agent ended the call.', reason_customer_hangup: 'You ended the call.',
    reason_no_agents: 'Nobody is available right now.', reason_max_wait: 'Sorry for the wait: please try again later.',
    reason_connection_lost: 'The connection was lost.', reason_agent_lost: 'We lost the connection to the agent.', reason_api_hangup: 'The call was ended.', reason_shutdown: 'The service is restarting.'
  };

  var context = {};
  var listeners = {};
  var ui = null, ws = null, pc = null, mic = null, timer = null, t0 = 0, muted = false, active = false;

  function emit(name, data) { (listeners[name] || []).forEach(function (f) { try { f(data); } catch (e) { /* a listener's bug is its own */ } }); }
  function fmt(s, v) { return s.replace(/\{(\w+)\}/g, function (_, k) { return v[k]; }); }

  function build() {
    var host = document.createElement('div');
    host.id = 'clicktocall-widget';
    var root = host.attachShadow({ mode: 'open' });
    root.innerHTML =
      '<style>' +
      ':host{--a:var(--c2c-accent,#1f6feb);--b:var(--c2c-bg,#fff);--f:var(--c2c-fg,#1d2433);--r:var(--c2c-radius,12px);' +
      'position:fixed;right:20px;bottom:20px;z-index:2147483000;font:15px/1.4 var(--c2c-font,system-ui,sans-serif)}' +
      'button{font:inherit;cursor:pointer;border:0;border-radius:var(--r);padding:.55em 1em}' +
      'button:focus-visible,input:focus-visible{outline:3px solid var(--a);outline-offset:2px}' +
      '.fab{background:var(--a);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25)}' +
      '.panel{display:none;width:290px;background:var(--b);color:var(--f);border-radius:var(--r);box-shadow:0 8px 30px rgba(0,0,0,.25);padding:14px}' +
            'h2{font-size:1.05em;margin:0 0 8px}.row{display:flex;gap:8px;margin-top:8px;flex-wrap:wrap}' +
      '.primary{background:var(--a);color:#fff}.secondary{background:#e8ecf2;color:var(--f)}.danger{background:#c62828;color:#fff}' +
      '.status{min-height:2.8em;margin:6px 0}.msg{color:#b3261e;min-height:1.2em}.timer{font-variant-numeric:tabular-nums}' +
      '.keys{display:none;grid-template-columns:repeat(3,1fr);gap:6px;margin-top:8px}.keys.on{display:grid}' +
      '.keys button{background:#e8ecf2;color:var(--f);padding:.5em 0}' +
      'input{font:inherit;width:100%;box-sizing:border-box;padding:.45em;border:1px solid #b8c0cc;border-radius:8px}' +
      '.hidden{display:none}' +
      '</style>' +
      '<button class="fab" part="button" aria-haspopup="dialog"></button>' +
      '<div class="panel" role="dialog" aria-modal="false" aria-labelledby="c2c-title">' +
      '<h2 id="c2c-title"></h2>' +
      '<div class="start"><div class="row"><button class="primary go"></button><button class="secondary cb"></button></div>' +
      '<div class="cbform hidden"><label><span class="lbl"></span><input type="tel" autocomplete="tel"></label>' +
      '<div class="row"><button class="secondary cbgo"></button></div></div></div>' +
      '<div class="status" role="status" aria-live="polite"></div><div class="timer" aria-hidden="true"></div>' +
      '<div class="msg" role="alert"></div>' +
      '<div class="incall hidden"><div class="row"><button class="secondary kp" aria-expanded="false"></button>' +
      '<button class="secondary mute" aria-pressed="false"></button><button class="danger hang"></button></div>' +
      '<div class="keys" role="group"></div></div>' +
      '<div class="row"><button class="secondary x"></button></div></div>';
    var q = function (s) { return root.querySelector(s); };
    ui = { host: host, root: root, q: q };
    q('.fab').textContent = S.button;
    q('#c2c-title').textContent = S.title;
    q('.go').textContent = S.callBrowser;
    q('.cb').textContent = S.callBack;
    q('.lbl').textContent = S.phone;
    q('.cbgo').textContent = S.callBackGo;
    q('.kp').textContent = S.keypad;
    q('.mute').textContent = S.mute;
    q('.hang').textContent = S.hangup;
    q('.x').textContent = S.close;
    q('.keys').setAttribute('aria-label', S.keypad);
    '123456789*0#'.split('').forEach(function (d) {
      var b = document.createElement('button');
      b.textContent = d; b.setAttribute('aria-label', d);
      b.addEventListener('click', function () { dtmf(d); });
      q('.keys').appendChild(b);
    });
    q('.fab').addEventListener('click', open);
    q('.x').addEventListener('click', close);
    q('.go').addEventListener('click', call);
    q('.cb').addEventListener('click', function () { q('.cbform').classList.toggle('hidden'); q('input').focus(); });
    q('.cbgo').addEventListener('click', callback);
    q('input').addEventListener('keydown', function (e) { if (e.key === 'Enter') callback(); });
    q('.hang').addEventListener('click', hangup);
    q('.mute').addEventListener('click', toggleMute);
    q('.kp').addEventListener('click', function () {
      var on = q('.keys').classList.toggle('on');
      q('.kp').setAttribute('aria-expanded', String(on));
    });
    root.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && !active) close();
      if (active && /^[0-9*#]$/.test(e.key) && e.target.tagName !== 'INPUT') dtmf(e.key);
    });
    document.body.appendChild(host);
  }

  function open() {
    if (!ui) build();
    ui.q('.panel').style.display = 'block';
    ui.q('.fab').style.display = 'none';
    ui.q('.go').focus();
  }
  function close() {
    if (!ui || active) return;
    ui.q('.panel').style.display = 'none';
    ui.q('.fab').style.display = '';
    ui.q('.fab').focus();
  }
  function message(t) { ui.q('.msg').textContent = t || ''; }
  function status(t) { ui.q('.status').textContent = t || ''; }
  function inCall(on) {
    active = on;
    ui.q('.start').classList.toggle('hidden', on);
    ui.q('.incall').classList.toggle('hidden', !on);
    ui.q('.x').classList.toggle('hidden', on);
    if (on) ui.q('.hang').focus();
  }

  function setState(s) {
    var text = S[s.state] || s.state;
    if (s.state === 'queued' && s.position) {
      text = S.queued + ' — ' + fmt(S.position, { n: s.position }) +
        (s.estimated_wait_secs ? ' (' + fmt(S.wait, { m: Math.max(1, Math.round(s.estimated_wait_secs / 60)) }) + ')' : '');
    }
    if (s.state === 'ended') text = S.ended + (s.reason && S['reason_' + s.reason] ? ': ' + S['reason_' + s.reason] : '');
    status(text);
    if (s.state === 'ivr') ui.q('.keys').classList.add('on');
    if (s.state === 'connected' && !t0) { t0 = Date.now(); timer = setInterval(tick, 1000); }
    if (s.state === 'ended') teardown();
    ui.host.setAttribute('data-state', s.state);
    emit('state', s);
  }
  function tick() {
    var t = Math.floor((Date.now() - t0) / 1000);
    ui.q('.timer').textContent = Math.floor(t / 60) + ':' + String(t % 60).padStart(2, '0');
  }

  function call() {
    message('');
    if (!window.RTCPeerConnection || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      message(S.noWebrtc); emit('error', { code: 'no_webrtc' }); return;
    }
    inCall(true);
    status(S.connecting);
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      mic = stream;
      return connect();
    }).catch(function (e) {
      var denied = e && (e.name === 'NotAllowedError' || e.name === 'SecurityError');
      message(denied ? S.micDenied : S.noWebrtc);
      emit('error', { code: denied ? 'mic_denied' : 'no_webrtc' });
      teardown(); status('');
    });
  }

  // The socket opens first: its `hello` names the ICE servers (STUN, TURN with per-session
  // credentials) the peer connection needs before it gathers candidates.
  function connect() {
    ws = new WebSocket(wsUrl);
    var opened = false;
    ws.onopen = function () { opened = true; };
    ws.onmessage = function (ev) {
      var m; try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === 'hello') offer(m.ice_servers || []);
      else if (m.type === 'answer') pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
      else if (m.type === 'state') setState(m);
      else if (m.type === 'error') {
        message(m.code === 'unavailable' || m.code === 'busy' ? S.noAgents : m.message);
        emit('error', m);
        if (!t0 && active && ['bad_offer', 'unavailable', 'busy', 'unknown_queue'].indexOf(m.code) >= 0) teardown();
      }
    };
    ws.onclose = function () {
      if (active) { message(opened ? S.lost : S.unreachable); emit('error', { code: opened ? 'lost' : 'unreachable' }); teardown(); }
    };
  }

  function offer(iceServers) {
    if (!ws || pc) return;
    pc = new RTCPeerConnection({ iceServers: iceServers });
    mic.getTracks().forEach(function (t) { pc.addTrack(t, mic); });
    pc.ontrack = function (e) {
      var a = ui.root.querySelector('audio') || document.createElement('audio');
      a.autoplay = true; a.srcObject = e.streams[0] || new MediaStream([e.track]);
      ui.root.appendChild(a);
    };
    var p = pc, sent = false;
    // Candidates found after the offer went (slow TURN allocations) are trickled.
    p.onicecandidate = function (e) {
      if (sent && e.candidate && ws && ws.readyState === 1) ws.send(JSON.stringify({ type: 'ice', candidate: e.candidate.candidate }));
    };
    p.createOffer().then(function (o) { return p.setLocalDescription(o); }).then(function () {
      return new Promise(function (done) {
        if (p.iceGatheringState === 'complete') return done();
        var t = setTimeout(done, 2000);
        p.addEventListener('icegatheringstatechange', function () {
          if (p.iceGatheringState === 'complete') { clearTimeout(t); done(); }
        });
      });
    }).then(function () {
      if (p !== pc || !ws || ws.readyState !== 1) return;
      var msg = { type: 'call', v: 1, sdp: p.localDescription.sdp, context: context };
      if (cfg.queue) msg.queue = cfg.queue;
      if (cfg.skill) msg.skill = cfg.skill;
      ws.send(JSON.stringify(msg));
      sent = true;
    });
  }

  // Call me back: a socket of its own that stays open for the callback's progress.
  var cbws = null;
  function callback() {
    var number = ui.q('input').value.trim();
    message('');
    if (!/^[+0-9 ().\/-]{6,32}$/.test(number)) { message(S.badNumber); return; }
    if (cbws) cbws.close();
    var w = cbws = new WebSocket(wsUrl), opened = false;
    status(S.connecting);
    w.onopen = function () { opened = true; };
    w.onmessage = function (ev) {
      var m; try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === 'hello') {
        if (!m.callback) { status(''); message(S.callBackNA); w.close(); return; }
        var msg = { type: 'callback', v: 1, number: number, context: context };
        if (cfg.queue) msg.queue = cfg.queue;
        w.send(JSON.stringify(msg));
      } else if (m.type === 'callback') {
        var at = m.not_before ? new Date(m.not_before * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
        var t = m.state === 'scheduled' ? (m.reason ? fmt(S.cb_retry, { t: at }) : (m.not_before * 1000 > Date.now() + 60000 ? fmt(S.cb_later, { t: at }) : S.cb_scheduled))
          : m.state === 'failed' ? fmt(S.cb_failed, { r: S['cbReason_' + m.reason] || m.reason }) : (S['cb_' + m.state] || m.state);
        status(t);
        ui.host.setAttribute('data-callback', m.state);
        emit('callback', m);
        if (['failed', 'unconfirmed', 'cancelled'].indexOf(m.state) >= 0) w.close();
      } else if (m.type === 'state') {
        // The call on the visitor's phone: same words as a browser call.
        status(m.state === 'ended' ? S.ended : m.state === 'queued' ? S.cb_completed : (S[m.state] || m.state));
        emit('state', m);
      } else if (m.type === 'error') {
        status('');
        message(m.code === 'invalid_number' ? S.badNumber : m.code === 'number_not_allowed' ? S.numberRefused
          : m.code === 'rate_limited' || m.code === 'callback_full' ? S.tooMany
          : m.code === 'callback_unavailable' ? S.callBackNA : m.message);
        emit('error', m);
      }
    };
    w.onclose = function () { if (cbws === w) cbws = null; if (!opened) { status(''); message(S.unreachable); } };
  }

  function dtmf(d) {
    var s = pc && pc.getSenders().find(function (x) { return x.dtmf; });
    if (s && s.dtmf.canInsertDTMF) s.dtmf.insertDTMF(d, 120, 70);
    else if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: 'dtmf', digits: d }));
  }
  function toggleMute() {
    muted = !muted;
    if (mic) mic.getAudioTracks().forEach(function (t) { t.enabled = !muted; });
    ui.q('.mute').textContent = muted ? S.unmute : S.mute;
    ui.q('.mute').setAttribute('aria-pressed', String(muted));
  }
  function hangup() {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: 'hangup' }));
    else teardown();
  }
  function teardown() {
    clearInterval(timer); timer = null; t0 = 0;
    if (mic) mic.getTracks().forEach(function (t) { t.stop(); });
    if (pc) pc.close();
    var w = ws; ws = null; pc = null; mic = null;
    inCall(false);
    if (w && w.readyState <= 1) setTimeout(function () { w.close(); }, 100);
  }

  window.ClickToCall = {
    __loaded: true,
    strings: S,
    setContext: function (c) { context = Object.assign({}, context, c || {}); },
    open: function () { if (document.body) open(); else document.addEventListener('DOMContentLoaded', open); },
    close: close,
    on: function (name, f) { (listeners[name] = listeners[name] || []).push(f); }
  };
  if (document.body) build(); else document.addEventListener('DOMContentLoaded', build);
})();
