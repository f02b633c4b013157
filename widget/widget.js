/*! clicktocall widget — embed with
 *   <script src="https://gw.example.com/widget.js" data-queue="support" data-lang="de" async></script>
 * API: ClickToCall.setContext({...}), .open(), .close(), .restartIce() (an ICE restart of the call, now),
 *      .on(name, fn): 'state' fn({state, position, estimated_wait_secs, reason, options}), 'error' fn({code, message}),
 *      'callback' fn({id, state, ...}), 'reconnecting', 'reconnected', 'warning' fn({warnings: ['loss', 'jitter', 'rtt', 'silent_mic']}).
 * Host #clicktocall-widget: data-state, data-link ("ok" once answered; "reconnecting" while the socket or the media
 *   path is being restored), data-warning (active quality warnings, space-separated), data-callback.
 * Language: the script's data-lang, else <html lang>: en, de, es, fr (others: en); ClickToCall.strings is the active table.
 * ClickToCall.debug() → {pc, ws, token}: a test/diagnostics hook, not a stable API.
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
  function siteUrl(u) { return cfg.site ? u + (u.indexOf('?') < 0 ? '?' : '&') + 'site=' + encodeURIComponent(cfg.site) : u; }
  var wsUrl = siteUrl(cfg.gateway || ((base.protocol === 'https:' ? 'wss://' : 'ws://') + base.host + '/ws'));

  // Every user-visible string, in English; T holds the other languages with the same keys.
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
    mute: 'Mute', unmute: 'Unmute', hangup: 'Hang up', close: 'Close', keypad: 'Keypad', menu: 'Menu',
    micDenied: 'Microphone access was denied. Allow it in your browser to call.',
    noWebrtc: 'This browser cannot place calls (no WebRTC).',
    unreachable: 'The call service is unreachable. Please try again later.',
    noAgents: 'Nobody is available right now. Please try again later.',
    lost: 'The connection was lost.', reconnecting: 'Reconnecting…',
    reason_agent_hangup: 'The agent ended the call.', reason_customer_hangup: 'You ended the call.',
    reason_no_agents: 'Nobody is available right now.', reason_max_wait: 'Sorry for the wait: please try again later.',
    reason_connection_lost: 'The connection was lost.', reason_agent_lost: 'We lost the connection to the agent.', reason_api_hangup: 'The call was ended.', reason_shutdown: 'The service is restarting.',
    warn_loss: 'Poor connection: audio is being lost', warn_jitter: 'Unstable connection',
    warn_rtt: 'Slow connection: there may be a delay', warn_silent_mic: 'We can\'t hear your microphone'
  };
  var T = {
    de: {
      button: 'Rufen Sie uns an', title: 'Sprechen Sie mit uns', callBrowser: 'Jetzt im Browser anrufen', callBack: 'Rückruf anfordern', phone: 'Ihre Telefonnummer',
      callBackGo: 'Rufen Sie mich an', callBackNA: 'Rückruf ist hier nicht möglich. Bitte rufen Sie im Browser an.', cb_scheduled: 'Danke! Wir rufen Sie gleich an.',
      cb_later: 'Danke! Wir rufen Sie um {t} an.', cb_retry: 'Wir haben Sie nicht erreicht; wir versuchen es um {t} erneut.', cb_dialing: 'Wir rufen Ihr Telefon an…',
      cb_ringing: 'Ihr Telefon klingelt: bitte abnehmen.', cb_in_call: 'Bitte nehmen Sie ab und drücken Sie die 1.',
      cb_completed: 'Sie sind in der Warteschlange: bitte bleiben Sie am Telefon.',
      cb_unconfirmed: 'Wir haben angerufen, aber niemand hat die 1 gedrückt. Bitte versuchen Sie es erneut.', cb_cancelled: 'Rückruf abgebrochen.',
      cb_failed: 'Wir haben Sie nicht erreicht ({r}).', cbReason_busy: 'besetzt', cbReason_no_answer: 'keine Antwort', cbReason_rejected: 'abgelehnt',
      cbReason_invalid_number: 'keine gültige Nummer', cbReason_trunk_error: 'Netzwerkfehler', badNumber: 'Bitte geben Sie eine gültige Telefonnummer ein.',
      numberRefused: 'Diese Nummer können wir nicht anrufen.', tooMany: 'Zu viele Anfragen. Bitte versuchen Sie es später erneut.', connecting: 'Verbindung wird aufgebaut…',
      ivr: 'Im Menü: bitte die Tastatur benutzen', queued: 'Warten auf einen Mitarbeiter', position: 'Sie sind Nummer {n} in der Warteschlange', wait: 'etwa {m} Min.',
      ringing: 'Ein Mitarbeiter wird angerufen…', connected: 'Verbunden', on_hold: 'In der Warteschleife', transferring: 'Wird weitergeleitet…', ended: 'Anruf beendet',
      mute: 'Stumm', unmute: 'Ton an', hangup: 'Auflegen', close: 'Schließen', keypad: 'Tastatur', menu: 'Menü',
      micDenied: 'Der Zugriff auf das Mikrofon wurde verweigert. Erlauben Sie ihn im Browser, um anzurufen.', noWebrtc: 'Dieser Browser kann keine Anrufe tätigen (kein WebRTC).',
      unreachable: 'Der Anrufdienst ist nicht erreichbar. Bitte versuchen Sie es später erneut.', noAgents: 'Gerade ist niemand erreichbar. Bitte versuchen Sie es später erneut.',
      lost: 'Die Verbindung wurde unterbrochen.', reconnecting: 'Verbindung wird wiederhergestellt…', reason_agent_hangup: 'Der Mitarbeiter hat das Gespräch beendet.',
      reason_customer_hangup: 'Sie haben das Gespräch beendet.', reason_no_agents: 'Gerade ist niemand erreichbar.',
      reason_max_wait: 'Entschuldigen Sie die Wartezeit: bitte versuchen Sie es später erneut.', reason_connection_lost: 'Die Verbindung wurde unterbrochen.',
      reason_agent_lost: 'Die Verbindung zum Mitarbeiter ist abgebrochen.', reason_api_hangup: 'Das Gespräch wurde beendet.', reason_shutdown: 'Der Dienst wird neu gestartet.',
      warn_loss: 'Schlechte Verbindung: Ton geht verloren', warn_jitter: 'Instabile Verbindung', warn_rtt: 'Langsame Verbindung: es kann zu Verzögerungen kommen',
      warn_silent_mic: 'Wir hören Ihr Mikrofon nicht'
    },
    es: {
      button: 'Llámanos', title: 'Habla con nosotros', callBrowser: 'Llamar ahora desde el navegador', callBack: 'Quiero que me llamen', phone: 'Tu número de teléfono',
      callBackGo: 'Llamadme', callBackNA: 'Aquí no podemos devolver la llamada. Llama desde el navegador.', cb_scheduled: '¡Gracias! Te llamaremos en breve.',
      cb_later: '¡Gracias! Te llamaremos a las {t}.', cb_retry: 'No pudimos contactarte; lo intentaremos de nuevo a las {t}.', cb_dialing: 'Llamando a tu teléfono…',
      cb_ringing: 'Tu teléfono está sonando: contesta, por favor.', cb_in_call: 'Contesta el teléfono y pulsa 1.', cb_completed: 'Estás en la cola: no cuelgues.',
      cb_unconfirmed: 'Te llamamos, pero nadie pulsó 1. Inténtalo de nuevo.', cb_cancelled: 'Llamada cancelada.', cb_failed: 'No pudimos contactarte ({r}).',
      cbReason_busy: 'ocupado', cbReason_no_answer: 'sin respuesta', cbReason_rejected: 'rechazada', cbReason_invalid_number: 'número no válido',
      cbReason_trunk_error: 'error de red', badNumber: 'Introduce un número de teléfono válido.', numberRefused: 'No podemos llamar a este número.',
      tooMany: 'Demasiadas solicitudes. Inténtalo más tarde.', connecting: 'Conectando…', ivr: 'En el menú: usa el teclado', queued: 'Esperando a un agente',
      position: 'Eres el número {n} de la cola', wait: 'unos {m} min', ringing: 'Llamando a un agente…', connected: 'Conectado', on_hold: 'En espera',
      transferring: 'Transfiriendo…', ended: 'Llamada finalizada', mute: 'Silenciar', unmute: 'Activar sonido', hangup: 'Colgar', close: 'Cerrar', keypad: 'Teclado', menu: 'Menú',
      micDenied: 'Se denegó el acceso al micrófono. Permítelo en el navegador para llamar.', noWebrtc: 'Este navegador no puede hacer llamadas (sin WebRTC).',
      unreachable: 'El servicio de llamadas no está disponible. Inténtalo más tarde.', noAgents: 'Ahora no hay nadie disponible. Inténtalo más tarde.',
      lost: 'Se perdió la conexión.', reconnecting: 'Reconectando…', reason_agent_hangup: 'El agente finalizó la llamada.', reason_customer_hangup: 'Has finalizado la llamada.',
      reason_no_agents: 'Ahora no hay nadie disponible.', reason_max_wait: 'Perdona la espera: inténtalo más tarde.', reason_connection_lost: 'Se perdió la conexión.',
      reason_agent_lost: 'Se perdió la conexión con el agente.', reason_api_hangup: 'La llamada ha finalizado.', reason_shutdown: 'El servicio se está reiniciando.',
      warn_loss: 'Conexión deficiente: se pierde audio', warn_jitter: 'Conexión inestable', warn_rtt: 'Conexión lenta: puede haber retraso',
      warn_silent_mic: 'No oímos tu micrófono'
    },
    fr: {
      button: 'Appelez-nous', title: 'Parlez-nous', callBrowser: 'Appeler depuis le navigateur', callBack: 'Être rappelé', phone: 'Votre numéro de téléphone',
      callBackGo: 'Rappelez-moi', callBackNA: 'Le rappel n’est pas disponible ici. Appelez depuis le navigateur.', cb_scheduled: 'Merci ! Nous vous appelons très bientôt.',
      cb_later: 'Merci ! Nous vous appellerons à {t}.', cb_retry: 'Nous n’avons pas pu vous joindre ; nouvel essai à {t}.', cb_dialing: 'Appel de votre téléphone…',
      cb_ringing: 'Votre téléphone sonne : veuillez répondre.', cb_in_call: 'Répondez au téléphone et appuyez sur 1.',
      cb_completed: 'Vous êtes en file d’attente : restez en ligne.', cb_unconfirmed: 'Nous avons appelé, mais personne n’a appuyé sur 1. Veuillez réessayer.',
      cb_cancelled: 'Rappel annulé.', cb_failed: 'Nous n’avons pas pu vous joindre ({r}).', cbReason_busy: 'occupé', cbReason_no_answer: 'pas de réponse',
      cbReason_rejected: 'refusé', cbReason_invalid_number: 'numéro non valide', cbReason_trunk_error: 'erreur réseau', badNumber: 'Saisissez un numéro de téléphone valide.',
      numberRefused: 'Nous ne pouvons pas appeler ce numéro.', tooMany: 'Trop de demandes. Réessayez plus tard.', connecting: 'Connexion…',
      ivr: 'Dans le menu : utilisez le clavier', queued: 'En attente d’un conseiller', position: 'Vous êtes n° {n} dans la file', wait: 'environ {m} min',
      ringing: 'Appel d’un conseiller…', connected: 'Connecté', on_hold: 'En attente', transferring: 'Transfert…', ended: 'Appel terminé', mute: 'Couper le micro',
      unmute: 'Réactiver le micro', hangup: 'Raccrocher', close: 'Fermer', keypad: 'Clavier', menu: 'Menu',
      micDenied: 'L’accès au micro a été refusé. Autorisez-le dans votre navigateur pour appeler.', noWebrtc: 'Ce navigateur ne peut pas passer d’appels (pas de WebRTC).',
      unreachable: 'Le service d’appel est injoignable. Réessayez plus tard.', noAgents: 'Personne n’est disponible pour le moment. Réessayez plus tard.',
      lost: 'La connexion a été perdue.', reconnecting: 'Reconnexion…', reason_agent_hangup: 'Le conseiller a mis fin à l’appel.',
      reason_customer_hangup: 'Vous avez mis fin à l’appel.', reason_no_agents: 'Personne n’est disponible pour le moment.',
      reason_max_wait: 'Désolés pour l’attente : réessayez plus tard.', reason_connection_lost: 'La connexion a été perdue.',
      reason_agent_lost: 'La connexion avec le conseiller a été perdue.', reason_api_hangup: 'L’appel a été terminé.', reason_shutdown: 'Le service redémarre.',
      warn_loss: 'Mauvaise connexion : le son se perd', warn_jitter: 'Connexion instable', warn_rtt: 'Connexion lente : il peut y avoir un décalage',
      warn_silent_mic: 'Nous n’entendons pas votre micro'
    }
  };
  // data-lang, else the page's language; the first two letters pick the table (unknown: English).
  var lang = String(cfg.lang || document.documentElement.lang || '').slice(0, 2).toLowerCase();
  if (!T[lang]) lang = 'en';
  var L = lang === 'en' ? S : Object.assign({}, S, T[lang]);

  var context = {}, listeners = {};
  var ui = null, ws = null, pc = null, mic = null, timer = null, t0 = 0, muted = false, active = false;
  // Keeping a call alive across a lost socket or a changed network: the resume token, the link's health.
  var opened = false, token = null, grace = 30, answered = false, last = null, lostAt = 0, pcBad = false;
  var beat = null, watchdog = null, retry = null, deadline = null, tries = 0;
  var iceBusy = 0, iceDone = 0, icePending = false, iceGen = 0, trickle = false;
  // Call quality: the stats sampler, the last samples, the warnings shown now and during the call.
  var WARNINGS = ['loss', 'jitter', 'rtt', 'silent_mic'];
  var poller = null, summary = null, prev = null, cur = null, warn = {}, seen = [];

  function emit(name, data) { (listeners[name] || []).forEach(function (f) { try { f(data); } catch (e) { /* a listener's bug is its own */ } }); }
  function fmt(s, v) { return s.replace(/\{(\w+)\}/g, function (_, k) { return v[k]; }); }

  function build() {
    var host = document.createElement('div');
    host.id = 'clicktocall-widget';
    host.setAttribute('lang', lang);
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
      '.warn{color:#8a4b00;font-size:.9em;white-space:pre-line}.menu{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}' +
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
      '<div class="warn" role="status"></div><div class="msg" role="alert"></div>' +
      '<div class="incall hidden"><div class="row"><button class="secondary kp" aria-expanded="false"></button>' +
      '<button class="secondary mute" aria-pressed="false"></button><button class="danger hang"></button></div>' +
      '<div class="menu hidden" role="group"></div><div class="keys" role="group"></div></div>' +
      '<div class="row"><button class="secondary x"></button></div></div>';
    var q = function (s) { return root.querySelector(s); };
    ui = { host: host, root: root, q: q };
    q('.fab').textContent = L.button;
    q('#c2c-title').textContent = L.title;
    q('.go').textContent = L.callBrowser;
    q('.cb').textContent = L.callBack;
    q('.lbl').textContent = L.phone;
    q('.cbgo').textContent = L.callBackGo;
    q('.kp').textContent = L.keypad;
    q('.mute').textContent = L.mute;
    q('.hang').textContent = L.hangup;
    q('.x').textContent = L.close;
    q('.keys').setAttribute('aria-label', L.keypad);
    q('.menu').setAttribute('aria-label', L.menu);
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

  function stateText(s) {
    var text = L[s.state] || s.state;
    if (s.state === 'queued' && s.position) {
      text = L.queued + ' — ' + fmt(L.position, { n: s.position }) +
        (s.estimated_wait_secs ? ' (' + fmt(L.wait, { m: Math.max(1, Math.round(s.estimated_wait_secs / 60)) }) + ')' : '');
    }
    if (s.state === 'ended') text = L.ended + (s.reason && L['reason_' + s.reason] ? ': ' + L['reason_' + s.reason] : '');
    return text;
  }
  function setState(s) {
    last = s;
    // While the link is down the state is news, but "Connected" would be a lie.
    status(s.state !== 'ended' && (lostAt || pcBad) ? L.reconnecting : stateText(s));
    showMenu(s.state === 'ivr' ? s.options : null);
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
  // The menu's labelled choices as buttons: a shortcut for the keypad, which stays.
  function showMenu(options) {
    var box = ui.q('.menu');
    box.textContent = '';
    (Array.isArray(options) ? options : []).forEach(function (o) {
      if (!o || !/^[0-9*#A-D]$/.test(o.digit)) return;
      var b = document.createElement('button');
      b.className = 'secondary'; b.textContent = o.label ? String(o.label) : o.digit;
      b.setAttribute('data-digit', o.digit);
      b.addEventListener('click', function () { dtmf(o.digit); });
      box.appendChild(b);
    });
    box.classList.toggle('hidden', !box.firstChild);
  }

  function call() {
    message('');
    if (!window.RTCPeerConnection || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      message(L.noWebrtc); emit('error', { code: 'no_webrtc' }); return;
    }
    inCall(true);
    status(L.connecting);
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      mic = stream;
      return connect();
    }).catch(function (e) {
      var denied = e && (e.name === 'NotAllowedError' || e.name === 'SecurityError');
      message(denied ? L.micDenied : L.noWebrtc);
      emit('error', { code: denied ? 'mic_denied' : 'no_webrtc' });
      teardown(); status('');
    });
  }

  // The socket opens first: its `hello` names the ICE servers (STUN, TURN with per-session
  // credentials) the peer connection needs before it gathers candidates.
  function connect() { opened = false; ws = sock(); }

  // A call socket: only the current one (`ws`) is listened to; a replaced one is deaf.
  function sock() {
    var w = new WebSocket(wsUrl);
    w.onopen = function () { opened = true; heartbeat(w); };
    w.onmessage = function (ev) {
      if (w !== ws) return;
      alive(w);
      var m; try { m = JSON.parse(ev.data); } catch (e) { return; }
      received(w, m);
    };
    w.onclose = function () { lost(w); };
    return w;
  }
  function drop(w) { w.onopen = w.onmessage = w.onclose = null; try { w.close(); } catch (e) { /* closing already */ } }
  function up() { return !!ws && ws.readyState === 1 && !lostAt; }
  function send(m) { if (!up()) return false; ws.send(JSON.stringify(m)); return true; }

  // A socket can die without a close (a silent TCP blackhole): ping every 3 s, and a socket that
  // has said nothing for 7 s is dead.
  function heartbeat(w) {
    clearInterval(beat);
    beat = setInterval(function () { if (w.readyState === 1) w.send('{"type":"ping"}'); }, 3000);
    alive(w);
  }
  function alive(w) { clearTimeout(watchdog); watchdog = setTimeout(function () { lost(w); }, 7000); }

  function received(w, m) {
    if (m.type === 'hello') {
      if (!lostAt) return offer(m.ice_servers || []);
      clearTimeout(retry);
      w.send(JSON.stringify({ type: 'resume', v: 1, token: token }));
    } else if (m.type === 'answer') answer(m);
    else if (m.type === 'resumed') resumed(m);
    // The call is on another node: resume there.
    else if (m.type === 'moved') { wsUrl = siteUrl(m.url); lost(w); }
    else if (m.type === 'pong') { if (m.resume) token = m.resume; }
    else if (m.type === 'state') setState(m);
    else if (m.type === 'error') failed(m);
  }
  // The first answer and every re-offer's answer.
  function answer(m) {
    if (m.resume) token = m.resume;
    if (m.resume_grace_secs > 0) grace = m.resume_grace_secs;
    if (iceBusy) iceDone = Date.now();
    iceBusy = 0;
    if (pc) pc.setRemoteDescription({ type: 'answer', sdp: m.sdp }).catch(function () { /* a stale answer */ });
    if (!answered) { answered = true; showLink(); }
  }
  function failed(m) {
    if (lostAt) {
      // The answer to `resume`: the call is gone, or this socket is no good (try the next).
      emit('error', m);
      if (['resume_invalid', 'resume_expired', 'call_ended'].indexOf(m.code) >= 0) over(); else lost(ws);
      return;
    }
    // A refused re-offer leaves the media as it was: nothing for the visitor to read.
    var reoffer = iceBusy && (m.code === 'bad_offer' || m.code === 'no_call');
    if (reoffer) iceBusy = 0;
    else message(m.code === 'unavailable' || m.code === 'busy' ? L.noAgents : m.message);
    emit('error', m);
    if (!reoffer && !t0 && active && ['bad_offer', 'unavailable', 'busy', 'unknown_queue'].indexOf(m.code) >= 0) teardown();
  }

  // The socket is gone (closed, or silent). Without a call to resume that is the end, as it
  // always was; with one, the media goes on and a new socket resumes the call.
  function lost(w) {
    if (w !== ws) return;
    drop(w); ws = null; clearInterval(beat); clearTimeout(watchdog);
    if (!active) return;
    if (token) return relink();
    message(opened ? L.lost : L.unreachable);
    emit('error', { code: opened ? 'lost' : 'unreachable' });
    teardown();
  }
  // Backs off 250 ms, 500 ms, then every second, until the gateway's grace is spent (plus the
  // 10 to 15 s the gateway may take to notice a silent socket, and a margin): a visitor whose
  // network is back is back within about two seconds.
  function relink() {
    if (!lostAt) { lostAt = Date.now(); tries = 0; deadline = setTimeout(over, (grace + 20) * 1000); showLink(); }
    // A re-offer cut off by the loss is done again once resumed.
    if (iceBusy) { iceBusy = 0; icePending = true; }
    iceGen++; clearTimeout(retry);
    retry = setTimeout(attempt, 250 * Math.pow(2, Math.min(tries++, 2)));
  }
  function attempt() {
    var w = ws = sock();
    // No `hello` within 2 s: this attempt hangs (its SYN went nowhere); drop it, try the next.
    retry = setTimeout(function () { lost(w); }, 2000);
  }
  function resumed(m) {
    if (m.resume) token = m.resume;
    lostAt = 0; tries = 0; clearTimeout(retry); clearTimeout(deadline);
    showLink();
    if (icePending || pcBad) restartIce(icePending);
  }
  // The call could not be resumed: for the visitor it is over.
  function over() { setState({ state: 'ended', reason: 'connection_lost' }); }

  // data-link says what the widget knows: "reconnecting" while the socket or the media path is
  // down, "ok" otherwise; the status text follows.
  function showLink() {
    if (!ui || !answered) return;
    var down = !!lostAt || pcBad, was = ui.host.getAttribute('data-link'), v = down ? 'reconnecting' : 'ok';
    if (was === v) return;
    ui.host.setAttribute('data-link', v);
    if (down) { status(L.reconnecting); emit('reconnecting'); }
    else if (was) { if (last) status(stateText(last)); emit('reconnected'); }
  }
  function pcChange() {
    var p = pc; if (!p) return;
    var c = p.connectionState, i = p.iceConnectionState, bad = /^(disconnected|failed)$/;
    if (bad.test(c) || bad.test(i)) { pcBad = true; showLink(); restartIce(); }
    else if (c === 'connected' || (!c && /^(connected|completed)$/.test(i))) { pcBad = false; showLink(); }
  }

  // An offer with its candidates: ICE gathering may take up to 2 s; later ones are trickled.
  function gather(p, opts) {
    return p.createOffer(opts).then(function (o) { return p.setLocalDescription(o); }).then(function () {
      return new Promise(function (done) {
        if (p.iceGatheringState === 'complete') return done();
        var t = setTimeout(done, 2000);
        p.addEventListener('icegatheringstatechange', function f() {
          if (p.iceGatheringState !== 'complete') return;
          clearTimeout(t); p.removeEventListener('icegatheringstatechange', f); done();
        });
      });
    });
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
    var p = pc; trickle = false;
    // Candidates found after the offer went (slow TURN allocations) are trickled.
    p.onicecandidate = function (e) {
      if (trickle && p === pc && e.candidate) send({ type: 'ice', candidate: e.candidate.candidate });
    };
    p.onconnectionstatechange = p.oniceconnectionstatechange = pcChange;
    window.addEventListener('online', restartIce);
    window.addEventListener('pagehide', leave);
    poller = setInterval(poll, 2000); summary = setInterval(report, 10000);
    gather(p).then(function () {
      var msg = { type: 'call', v: 1, sdp: p.localDescription.sdp, context: context, lang: lang };
      if (cfg.queue) msg.queue = cfg.queue;
      if (cfg.skill) msg.skill = cfg.skill;
      if (p === pc && send(msg)) trickle = true;
    });
  }

  // A new network path for the running call (new ICE credentials, new candidates), offered with
  // `reoffer`. One at a time (one left unanswered for 10 s no longer counts); without a socket,
  // it waits for `resumed`.
  // A restart needs a few seconds to find its path: the `disconnected` it goes through does not
  // start another one (an explicit call, `force`, always does).
  function restartIce(force) {
    var p = pc;
    if (!p || Date.now() - iceBusy < 10000) return;
    if (force !== true && Date.now() - iceDone < 5000) return;
    if (!up()) { icePending = true; return; }
    iceBusy = Date.now(); icePending = false; trickle = false;
    var g = ++iceGen;
    if (p.restartIce) p.restartIce();
    gather(p, { iceRestart: true }).then(function () {
      if (g !== iceGen || p !== pc) return;
      if (send({ type: 'reoffer', sdp: p.localDescription.sdp })) trickle = true;
      else { iceBusy = 0; icePending = true; }
    }).catch(function () { if (g === iceGen) iceBusy = 0; });
  }

  function num(x) { return typeof x === 'number' && isFinite(x) && x >= 0 ? x : null; }
  // Call quality every 2 s, each condition judged on the last interval: a warning shows after two
  // bad samples in a row and clears after two good ones (one odd sample is no news).
  function poll() {
    var p = pc;
    if (!p || !p.getStats) return;
    p.getStats().then(function (rep) {
      if (p !== pc) return;
      var inb = null, src = null, pair = null, pairId = null, rtt = null;
      rep.forEach(function (r) {
        var audio = (r.kind || r.mediaType) === 'audio';
        if (r.type === 'inbound-rtp' && audio) inb = r;
        else if (r.type === 'media-source' && audio) src = r;
        else if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
        else if (r.type === 'candidate-pair' && (r.nominated || r.selected) && r.state === 'succeeded') pair = pair || r;
        else if (r.type === 'remote-inbound-rtp' && audio) rtt = num(r.roundTripTime);
      });
      if (pairId && rep.get && rep.get(pairId)) pair = rep.get(pairId);
      var s = { received: num(inb && inb.packetsReceived) || 0, lost: num(inb && inb.packetsLost) || 0,
        jitter: num(inb && inb.jitter), level: num(src && src.audioLevel), energy: num(src && src.totalAudioEnergy) };
      s.rtt = num(pair && pair.currentRoundTripTime); if (s.rtt === null) s.rtt = rtt;
      var dl = prev ? Math.max(0, s.lost - prev.lost) : 0, dr = prev ? Math.max(0, s.received - prev.received) : 0;
      var silent = s.level !== null ? s.level < 0.0005
        : s.energy !== null && !!prev && prev.energy !== null && s.energy <= prev.energy;
      var bad = { loss: dl + dr >= 20 && dl / (dl + dr) > 0.03, jitter: s.jitter !== null && s.jitter * 1000 > 30,
        rtt: s.rtt !== null && s.rtt * 1000 > 400, silent_mic: !!t0 && !muted && !!src && silent };
      var changed = false;
      WARNINGS.forEach(function (k) {
        var w = warn[k] || (warn[k] = { on: false, n: 0 });
        w.n = bad[k] !== w.on ? w.n + 1 : 0; // samples in a row that disagree with what shows
        if (w.n >= 2) { w.on = !w.on; w.n = 0; changed = true; }
      });
      prev = s;
      if (inb) cur = s;
      if (changed) showWarnings();
    }).catch(function () { /* no stats this time */ });
  }
  function showWarnings() {
    var on = WARNINGS.filter(function (k) { return warn[k] && warn[k].on; });
    on.forEach(function (k) { if (seen.indexOf(k) < 0) seen.push(k); });
    ui.q('.warn').textContent = on.map(function (k) { return L['warn_' + k]; }).join('\n');
    if (on.length) ui.host.setAttribute('data-warning', on.join(' ')); else ui.host.removeAttribute('data-warning');
    emit('warning', { warnings: on });
  }
  // What the browser received, for the gateway's call record: every 10 s, and before hangup.
  function report() {
    if (!cur || !answered) return;
    var clamp = function (x, hi) { return Math.min(hi, Math.max(0, x || 0)); };
    var m = { type: 'stats', received: Math.round(clamp(cur.received, 1e9)), lost: Math.round(clamp(cur.lost, 1e9)),
      jitter_ms: clamp(Math.round(cur.jitter * 10000) / 10, 60000) };
    if (cur.rtt !== null) m.rtt_ms = clamp(Math.round(cur.rtt * 10000) / 10, 60000);
    if (seen.length) m.warnings = seen.slice(0, 4);
    send(m);
  }

  // Call me back: a socket of its own that stays open for the callback's progress.
  var cbws = null;
  function callback() {
    var number = ui.q('input').value.trim();
    message('');
    if (!/^[+0-9 ().\/-]{6,32}$/.test(number)) { message(L.badNumber); return; }
    if (cbws) cbws.close();
    var w = cbws = new WebSocket(wsUrl), wopen = false;
    status(L.connecting);
    w.onopen = function () { wopen = true; };
    w.onmessage = function (ev) {
      var m; try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === 'hello') {
        if (!m.callback) { status(''); message(L.callBackNA); w.close(); return; }
        var msg = { type: 'callback', v: 1, number: number, context: context };
        if (cfg.queue) msg.queue = cfg.queue;
        w.send(JSON.stringify(msg));
      } else if (m.type === 'callback') {
        var at = m.not_before ? new Date(m.not_before * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
        var t = m.state === 'scheduled' ? (m.reason ? fmt(L.cb_retry, { t: at }) : (m.not_before * 1000 > Date.now() + 60000 ? fmt(L.cb_later, { t: at }) : L.cb_scheduled))
          : m.state === 'failed' ? fmt(L.cb_failed, { r: L['cbReason_' + m.reason] || m.reason }) : (L['cb_' + m.state] || m.state);
        status(t);
        ui.host.setAttribute('data-callback', m.state);
        emit('callback', m);
        if (['failed', 'unconfirmed', 'cancelled'].indexOf(m.state) >= 0) w.close();
      } else if (m.type === 'state') {
        // The call on the visitor's phone: same words as a browser call.
        status(m.state === 'ended' ? L.ended : m.state === 'queued' ? L.cb_completed : (L[m.state] || m.state));
        emit('state', m);
      } else if (m.type === 'error') {
        status('');
        message(m.code === 'invalid_number' ? L.badNumber : m.code === 'number_not_allowed' ? L.numberRefused
          : m.code === 'rate_limited' || m.code === 'callback_full' ? L.tooMany
          : m.code === 'callback_unavailable' ? L.callBackNA : m.message);
        emit('error', m);
      }
    };
    w.onclose = function () { if (cbws === w) cbws = null; if (!wopen) { status(''); message(L.unreachable); } };
  }

  function dtmf(d) {
    var s = pc && pc.getSenders().find(function (x) { return x.dtmf; });
    if (s && s.dtmf.canInsertDTMF) s.dtmf.insertDTMF(d, 120, 70);
    else send({ type: 'dtmf', digits: d });
  }
  function toggleMute() {
    muted = !muted;
    if (mic) mic.getAudioTracks().forEach(function (t) { t.enabled = !muted; });
    ui.q('.mute').textContent = muted ? L.unmute : L.mute;
    ui.q('.mute').setAttribute('aria-pressed', String(muted));
  }
  function hangup() {
    if (up()) { report(); send({ type: 'hangup' }); }
    // Reconnecting: end it here; the gateway ends its side when the grace runs out.
    else if (token) setState({ state: 'ended', reason: 'customer_hangup' });
    else teardown();
  }
  // The visitor leaves the page (closes the tab, navigates away): that is a hang-up, not a lost
  // socket the gateway should wait for.
  function leave(e) { if (!e.persisted && up()) { report(); send({ type: 'hangup' }); } }
  function teardown() {
    clearInterval(timer); timer = null; t0 = 0;
    clearInterval(beat); clearInterval(poller); clearInterval(summary); clearTimeout(watchdog); clearTimeout(retry); clearTimeout(deadline);
    window.removeEventListener('online', restartIce);
    window.removeEventListener('pagehide', leave);
    if (mic) mic.getTracks().forEach(function (t) { t.stop(); });
    if (pc) pc.close();
    var w = ws; ws = null; pc = null; mic = null;
    token = null; grace = 30; answered = false; last = null; lostAt = 0; pcBad = false;
    iceBusy = 0; iceDone = 0; icePending = false; iceGen++; trickle = false;
    var warned = WARNINGS.some(function (k) { return warn[k] && warn[k].on; });
    prev = cur = null; warn = {}; seen = [];
    ui.host.removeAttribute('data-link'); showMenu(null);
    if (warned) showWarnings();
    inCall(false);
    if (w && w.readyState <= 1) setTimeout(function () { w.close(); }, 100);
  }

  window.ClickToCall = {
    __loaded: true,
    strings: L,
    setContext: function (c) { context = Object.assign({}, context, c || {}); },
    open: function () { if (document.body) open(); else document.addEventListener('DOMContentLoaded', open); },
    close: close,
    restartIce: function () { restartIce(true); },
    on: function (name, f) { (listeners[name] = listeners[name] || []).push(f); },
    // Test/diagnostics hook: the live peer connection, call socket and resume token.
    debug: function () { return { pc: pc, ws: ws, token: token }; }
  };
  if (document.body) build(); else document.addEventListener('DOMContentLoaded', build);
})();
