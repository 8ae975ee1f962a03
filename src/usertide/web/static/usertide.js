/*! usertide.js 0.1.0 (Apache-2.0): sends Segment-spec events to usertide.
 *
 * <script src="https://HOST/usertide.js" data-write-key="KEY" async></script>
 * <script>window.usertide = window.usertide || [];
 *         usertide.push(["identify", "jane", {plan: "pro"}]);</script>
 *
 * Attributes: data-write-key, data-host (default: this script's origin),
 * data-autocapture="false" (no clicks), data-autopage="false" (no automatic page views),
 * data-respect-dnt="false" (ignore Do-Not-Track / Global Privacy Control).
 * API: track(event, props), page(name?, props?), identify(userId?, traits?), reset(),
 * optOut(), optIn(), flush() -> Promise, anonymousId(), userId(), sessionId().
 * Recommendations: recommend({n, filter, recommender, exclude}) -> Promise of
 * {rec_id, recommender, items: [{item_id, score, properties}]} for this visitor (events
 * not yet sent are sent first, so the last click counts); shown(answer, itemIds?) and
 * clicked(answer, itemId) record the impression and the click for click-through rates.
 *
 * Clicks on links, buttons and [role=button] are tracked as "$click"; an element with
 * data-usertide-event="Name" is tracked as "Name".
 * Privacy: with Do-Not-Track "1" or Global Privacy Control on, nothing is sent or stored.
 * optOut() is remembered and erases the stored ids and unsent events; nothing is sent or
 * stored until optIn(). Click text never comes from form fields; clicks on or inside
 * [data-usertide-ignore] are ignored.
 */
(() => {
  "use strict";
  const w = window, d = document, nav = navigator, loc = location;
  const VERSION = "0.1.0", P = "usertide_", SESSION_MS = 30 * 60 * 1000;
  const FLUSH_MS = 1000, BATCH_MAX = 20, QUEUE_MAX = 500, MAX_TRIES = 10;
  const BYTES_MAX = 60000; // keepalive fetch and sendBeacon allow 64 KB in flight
  const guard = (fn) => (...args) => { try { return fn(...args); } catch (e) { return undefined; } };

  function main(previous) {
    // -- configuration from the <script> tag ---------------------------------------------
    const script = d.currentScript || d.querySelector("script[data-write-key]");
    const attr = (name, dflt) => (script && script.getAttribute("data-" + name)) || dflt;
    const writeKey = attr("write-key", "");
    const host = attr("host", script && script.src ? new URL(script.src, loc.href).origin : loc.origin);
    const endpoint = host.replace(/\/+$/, "") + "/v1/batch";
    const autocapture = attr("autocapture") !== "false", autopage = attr("autopage") !== "false";
    const dnt = attr("respect-dnt") !== "false" &&
      (nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true);

    // -- storage: localStorage, else first-party cookies, else memory -------------------
    let ls = null, backend;
    try {
      ls = w.localStorage;
      ls.setItem(P + "t", "1");
      ls.removeItem(P + "t");
      backend = { get: (k) => ls.getItem(k), set: (k, v) => ls.setItem(k, v), del: (k) => ls.removeItem(k) };
    } catch (e) {
      ls = null;
      const mem = {}, tail = "; path=/; SameSite=Lax" + (loc.protocol === "https:" ? "; Secure" : "");
      backend = nav.cookieEnabled ? {
        get: (k) => { const m = d.cookie.match("(?:^|; )" + k + "=([^;]*)"); return m && decodeURIComponent(m[1]); },
        set: (k, v) => { d.cookie = k + "=" + encodeURIComponent(v) + "; max-age=31536000" + tail; },
        del: (k) => { d.cookie = k + "=; max-age=0" + tail; },
      } : { get: (k) => mem[k] || null, set: (k, v) => { mem[k] = v; }, del: (k) => { delete mem[k]; } };
    }
    let optedOut = false;
    const disabled = () => dnt || optedOut;
    const get = (k) => { try { return backend.get(P + k); } catch (e) { return null; } };
    const del = (k) => { try { backend.del(P + k); } catch (e) { /* blocked */ } };
    const set = (k, v) => { if (!disabled()) try { backend.set(P + k, v); } catch (e) { /* full */ } };
    optedOut = get("optout") === "1";

    const uuid = () => {
      const c = w.crypto;
      if (c && c.randomUUID) return c.randomUUID(); // secure contexts only
      const b = new Uint8Array(16);
      if (c && c.getRandomValues) c.getRandomValues(b);
      else for (let i = 0; i < 16; i++) b[i] = Math.random() * 256;
      b[6] = (b[6] & 15) | 64; // version 4
      b[8] = (b[8] & 63) | 128; // RFC 4122 variant
      const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
      return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
    };

    // -- identity and session ---------------------------------------------------------------
    let anonId = null, userId = null;
    const loadIds = () => { anonId = get("aid") || uuid(); userId = get("uid"); set("aid", anonId); };
    const session = () => { // a new session after 30 minutes without events
      const now = Date.now();
      let sid = get("sid");
      if (!sid || now - (+get("last") || 0) > SESSION_MS) sid = uuid();
      set("sid", sid);
      set("last", String(now));
      return sid;
    };

    // -- the outgoing queue -----------------------------------------------------------------
    // Unsent events are mirrored to localStorage under a per-page key; the next page of the
    // site sends what this one could not. The server deduplicates by messageId, so sending
    // an event twice is harmless; losing one is not.
    let queue = [], inflight = [], timer = 0, sending = null, backoff = 0, retryAt = 0, tries = 0;
    const mirrorKey = P + "q_" + uuid().slice(0, 8);
    const mirror = () => {
      const all = inflight.concat(queue);
      try {
        if (all.length && !disabled()) ls.setItem(mirrorKey, JSON.stringify(all));
        else ls.removeItem(mirrorKey);
      } catch (e) { /* no localStorage, or full */ }
    };
    const sweep = (adopt) => { // take over (or just delete) other pages' mirrored events
      const keys = [];
      for (let i = 0; i < ls.length; i++) if (ls.key(i).indexOf(P + "q_") === 0) keys.push(ls.key(i));
      keys.forEach((k) => {
        try { if (adopt) queue = queue.concat(JSON.parse(ls.getItem(k))); } catch (e) { /* corrupt */ }
        ls.removeItem(k);
      });
    };
    const size = (s) => new Blob([s]).size;
    const take = () => { // the next batch: <= BATCH_MAX events and <= BYTES_MAX bytes
      let n = 0, total = 0;
      while (n < queue.length && n < BATCH_MAX) {
        total += size(JSON.stringify(queue[n])) + 1;
        if (n && total > BYTES_MAX) break; // (one event always goes)
        n++;
      }
      return queue.splice(0, n);
    };
    const body = (batch) => JSON.stringify({ batch, sentAt: new Date().toISOString(), writeKey });

    const schedule = (ms) => {
      if (!queue.length || disabled()) return;
      ms = Math.max(ms, retryAt - Date.now());
      if (timer && ms > 0) return;
      clearTimeout(timer);
      timer = setTimeout(guard(() => { timer = 0; send(); }), ms);
    };
    // A batch the server refused MAX_TRIES times (429/5xx) is dropped so that it cannot
    // block the queue forever; network errors (offline) are retried as long as the page lives.
    const settle = (ok, retryAfter, answered) => {
      sending = null;
      if (!ok && answered && ++tries >= MAX_TRIES) ok = true; // give up on this batch
      if (ok) tries = backoff = retryAt = 0;
      else { // put the batch back; retry with exponential backoff or the server's Retry-After
        if (!disabled()) queue = inflight.concat(queue);
        backoff = Math.min(60000, backoff * 2 || 1000);
        retryAt = Date.now() + Math.max(backoff * (0.75 + Math.random() / 2), (+retryAfter || 0) * 1000);
      }
      inflight = [];
      mirror();
      schedule(queue.length >= BATCH_MAX ? 0 : FLUSH_MS);
      return ok;
    };
    // One batch by fetch; Content-Type text/plain avoids a CORS preflight. -> Promise<ok>
    const send = () => {
      if (sending) return sending;
      clearTimeout(timer);
      timer = 0;
      if (disabled() || !queue.length) return Promise.resolve(false);
      inflight = take();
      const payload = body(inflight);
      sending = fetch(endpoint, {
        method: "POST", body: payload, headers: { "Content-Type": "text/plain" },
        credentials: "omit", keepalive: size(payload) < 65000,
      }).then((res) => { // a 4xx other than 429 will never succeed: drop the batch
        const drop = res.status >= 400 && res.status < 500 && res.status !== 429;
        return settle(res.ok || drop, res.headers.get("Retry-After"), true);
      }, () => settle(false));
      return sending;
    };
    const flush = () => (sending || Promise.resolve()).then(send).then((ok) => (ok && queue.length ? flush() : undefined));
    // Leaving (or hidden, and maybe never shown again): hand everything to sendBeacon.
    const beacon = () => {
      if (disabled() || !queue.length) return;
      if (!nav.sendBeacon) return void send();
      clearTimeout(timer);
      timer = 0;
      while (queue.length) {
        const batch = take();
        if (!nav.sendBeacon(endpoint, new Blob([body(batch)], { type: "text/plain" }))) {
          queue = batch.concat(queue); // stays mirrored for the next page
          break;
        }
      }
      mirror();
    };

    // -- events -------------------------------------------------------------------------------
    let lastUrl = null, referrer = d.referrer;
    const pageInfo = () => ({ path: loc.pathname, url: loc.href, referrer, title: d.title, search: loc.search });
    const enqueue = (type, fields) => {
      if (disabled()) return;
      const ev = Object.assign({
        type, messageId: uuid(), timestamp: new Date().toISOString(), anonymousId: anonId,
        context: {
          page: pageInfo(), userAgent: nav.userAgent, locale: nav.language,
          timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
          screen: { width: w.screen.width, height: w.screen.height },
          library: { name: "usertide.js", version: VERSION }, sessionId: session(),
        },
      }, fields);
      if (userId) ev.userId = userId;
      queue.push(JSON.parse(JSON.stringify(ev))); // throws (event dropped) if props can't be JSON
      queue.splice(0, queue.length - QUEUE_MAX); // bounded while the server is unreachable
      mirror();
      schedule(queue.length >= BATCH_MAX ? 0 : FLUSH_MS);
    };

    const track = (event, props) => {
      if (event) enqueue("track", { event: String(event), properties: Object.assign({}, props) });
    };
    const page = (name, props) => {
      if (name && typeof name === "object") { props = name; name = null; }
      if (disabled()) return;
      if (lastUrl && lastUrl !== loc.href) referrer = lastUrl; // in an SPA: the previous route
      lastUrl = loc.href;
      enqueue("page", { name: name == null ? undefined : String(name), properties: Object.assign(pageInfo(), props) });
    };
    const identify = (id, traits) => {
      if (id && typeof id === "object") { traits = id; id = null; }
      if (disabled()) return;
      if (id != null && id !== "") set("uid", (userId = String(id)));
      enqueue("identify", { traits: Object.assign({}, traits) });
    };
    const reset = () => { // a new visitor: new anonymous id and session, no user
      ["uid", "sid", "last"].forEach(del);
      userId = null;
      set("aid", (anonId = uuid()));
    };
    const autoPage = () => { if (autopage && loc.href !== lastUrl) page(); };
    const optOut = () => {
      optedOut = true;
      queue = [];
      inflight = [];
      clearTimeout(timer);
      timer = 0;
      if (ls) sweep(false);
      ["aid", "uid", "sid", "last"].forEach(del);
      anonId = userId = null;
      try { backend.set(P + "optout", "1"); } catch (e) { /* blocked */ }
    };
    const optIn = () => {
      if (!optedOut) return;
      optedOut = false;
      del("optout");
      if (!dnt) { loadIds(); autoPage(); }
    };

    // -- click autocapture ----------------------------------------------------------------------
    const CLICKABLE = "a,button,input[type=submit],input[type=button],[role=button],[data-usertide-event]";
    const esc = (s) => (w.CSS && CSS.escape ? CSS.escape(s) : s.replace(/[^\w-]/g, "\\$&"));
    const selector = (el) => { // "#id", else a "tag.class:nth-of-type(n)" path of <= 5 levels
      const parts = [];
      for (let n = el; n && parts.length < 5 && !/^(BODY|HTML)$/.test(n.tagName); n = n.parentElement) {
        if (n.id) { parts.unshift("#" + esc(n.id)); break; }
        const same = Array.from(n.parentElement ? n.parentElement.children : []).filter((c) => c.tagName === n.tagName);
        parts.unshift(n.tagName.toLowerCase() + Array.from(n.classList).slice(0, 3).map((c) => "." + esc(c)).join("") +
          (same.length > 1 ? ":nth-of-type(" + (same.indexOf(n) + 1) + ")" : ""));
      }
      return parts.join(" > ");
    };
    const label = (el) => { // visible text, never a form field's value (passwords, searches)
      const field = /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
      const text = (!field && el.innerText) || el.getAttribute("aria-label") || el.getAttribute("title") || "";
      return text.replace(/\s+/g, " ").trim().slice(0, 100).trim();
    };
    const onClick = (e) => {
      if (!autocapture || disabled()) return;
      const t = e.target && e.target.nodeType === 1 ? e.target : e.target && e.target.parentElement;
      const el = t && t.closest(CLICKABLE);
      if (!el || el.closest("[data-usertide-ignore]")) return;
      const named = el.closest("[data-usertide-event]");
      const props = { tag: el.tagName.toLowerCase(), selector: selector(el) }, text = label(el);
      if (text) props.text = text;
      if (typeof el.href === "string" && el.href) props.href = el.href;
      track((named && named.getAttribute("data-usertide-event")) || "$click", props);
    };

    // -- recommendations ----------------------------------------------------------------------------
    const recUrl = host.replace(/\/+$/, "") + "/v1/recommendations";
    const NONE = { rec_id: null, recommender: null, items: [] };
    const recommend = (opts) => {
      opts = opts || {};
      if (disabled() || !anonId) return Promise.resolve(NONE);
      const q = new URLSearchParams({ anonymous_id: anonId, key: writeKey });
      if (opts.n) q.set("n", String(opts.n));
      if (opts.recommender) q.set("recommender", String(opts.recommender));
      [].concat(opts.filter || []).forEach((f) => q.append("filter", String(f)));
      if (opts.exclude) q.set("exclude", [].concat(opts.exclude).join(","));
      return flush().catch(() => {}).then(() => fetch(recUrl + "?" + q, { credentials: "omit" }))
        .then((res) => (res.ok ? res.json() : NONE), () => NONE);
    };
    const shown = (answer, ids) => {
      if (!answer || !answer.rec_id) return;
      const items = ids || (answer.items || []).map((i) => i.item_id);
      track("Recommendation Shown", { rec_id: answer.rec_id, recommender: answer.recommender,
        item_ids: items.slice(0, 100) });
    };
    const clicked = (answer, id) => {
      if (!answer || !answer.rec_id) return;
      const position = (answer.items || []).findIndex((i) => i.item_id === id);
      track("Recommendation Clicked", { rec_id: answer.rec_id, recommender: answer.recommender,
        item_id: String(id), position: position < 0 ? null : position + 1 });
    };

    // -- start ------------------------------------------------------------------------------------
    if (!writeKey && w.console) console.warn("usertide.js: data-write-key is missing");
    if (!disabled()) loadIds();
    if (ls) sweep(!disabled());
    const api = { track, page, identify, reset, optOut, optIn, anonymousId: () => anonId,
      userId: () => userId, sessionId: () => (disabled() ? null : get("sid")) };
    Object.keys(api).forEach((k) => { api[k] = guard(api[k]); });
    api.flush = () => { try { return flush().catch(() => {}); } catch (e) { return Promise.resolve(); } };
    api.recommend = (opts) => { try { return recommend(opts); } catch (e) { return Promise.resolve(NONE); } };
    api.shown = guard(shown);
    api.clicked = guard(clicked);
    api.push = guard((args) => { // usertide.push(["track", "Signed Up", {...}])
      const fn = args && args[0] !== "push" && api[args[0]];
      return typeof fn === "function" ? fn(...Array.prototype.slice.call(args, 1)) : undefined;
    });
    Object.defineProperty(api, "__usertide", { value: VERSION });
    w.usertide = api;
    if (Array.isArray(previous)) previous.forEach(api.push); // calls made before we loaded

    autoPage();
    if (autopage) { // single-page apps: a page view for each new URL
      const onRoute = () => setTimeout(guard(autoPage), 0);
      ["pushState", "replaceState"].forEach((m) => {
        const orig = history[m];
        history[m] = function () { const r = orig.apply(this, arguments); onRoute(); return r; };
      });
      w.addEventListener("popstate", onRoute);
      w.addEventListener("hashchange", onRoute);
    }
    d.addEventListener("click", guard(onClick), true);
    d.addEventListener("visibilitychange", guard(() => { if (d.visibilityState === "hidden") beacon(); }));
    w.addEventListener("pagehide", guard(beacon));
    schedule(FLUSH_MS); // events taken over from an earlier page
  }

  const previous = window.usertide;
  // Never throw into the host page; loading the script twice does nothing.
  if (!(previous && previous.__usertide)) guard(main)(previous);
})();
