/*! usertide.js 0.1.0 | Apache-2.0 | browser snippet for usertide (Segment-spec events)
 *
 *   <script src="https://HOST/usertide.js" data-write-key="KEY" async></script>
 *   <script>window.usertide = window.usertide || [];
 *           usertide.push(["identify", "jane", {plan: "pro"}]);</script>
 *
 * Script attributes: data-write-key; data-host (default: this script's origin);
 * data-autocapture="false" (no click events); data-autopage="false" (no automatic page
 * views); data-respect-dnt="false" (ignore Do-Not-Track and Global Privacy Control).
 *
 * API (also callable as usertide.push(["name", ...args]) before the script loads):
 * track(event, props), page(name?, props?), identify(userId?, traits?), reset(),
 * optOut(), optIn(), flush() -> Promise, anonymousId(), userId(), sessionId().
 *
 * Privacy: when the browser sends Do-Not-Track ("1") or Global Privacy Control, the
 * snippet sends and stores nothing. optOut() is remembered; it drops unsent events and
 * stored ids, and nothing is sent or stored until optIn(). Click text never comes from
 * form fields; clicks on or inside [data-usertide-ignore] are not captured.
 */
(() => {
  "use strict";
  try {
    const w = window, d = document, nav = navigator;
    const previous = w.usertide;
    if (previous && previous.__usertide) return; // the script was included twice

    const VERSION = "0.1.0", P = "usertide_";
    const SESSION_MS = 30 * 60 * 1000, FLUSH_MS = 1000, BATCH_MAX = 20;
    const BYTES_MAX = 60000; // keepalive fetch and sendBeacon allow 64 KB in flight
    const QUEUE_MAX = 500;
    const noop = () => {};
    const guard = (fn) => (...args) => { try { return fn(...args); } catch (e) { return undefined; } };

    // -- configuration from the <script> tag -------------------------------------------
    const script = d.currentScript || d.querySelector("script[data-write-key]");
    const attr = (name, dflt) => {
      const v = script && script.getAttribute("data-" + name);
      return v == null ? dflt : v;
    };
    const writeKey = attr("write-key", "");
    const origin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
    const endpoint = attr("host", origin).replace(/\/+$/, "") + "/v1/batch";
    const autocapture = attr("autocapture", "true") !== "false";
    const autopage = attr("autopage", "true") !== "false";
    const dnt = attr("respect-dnt", "true") !== "false" &&
      (nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true);
    if (!writeKey && w.console) console.warn("usertide.js: data-write-key is missing");

    // -- storage: localStorage, else first-party cookies, else memory -------------------
    let ls = null, backend;
    try {
      ls = w.localStorage;
      ls.setItem(P + "t", "1");
      ls.removeItem(P + "t");
      backend = { get: (k) => ls.getItem(k), set: (k, v) => ls.setItem(k, v), del: (k) => ls.removeItem(k) };
    } catch (e) {
      ls = null;
      const mem = {};
      backend = { get: (k) => (k in mem ? mem[k] : null), set: (k, v) => { mem[k] = v; }, del: (k) => { delete mem[k]; } };
      if (nav.cookieEnabled) {
        const tail = "; path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
        backend = {
          get: (k) => { const m = d.cookie.match("(?:^|; )" + k + "=([^;]*)"); return m ? decodeURIComponent(m[1]) : null; },
          set: (k, v) => { d.cookie = k + "=" + encodeURIComponent(v) + "; max-age=31536000" + tail; },
          del: (k) => { d.cookie = k + "=; max-age=0" + tail; },
        };
      }
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

    // -- identity and session -------------------------------------------------------------
    let anonId = null, userId = null;
    const loadIds = () => {
      anonId = get("aid") || uuid();
      userId = get("uid");
      set("aid", anonId);
    };
    // A new session starts after 30 minutes without events (last activity is persisted).
    const session = () => {
      const now = Date.now();
      let sid = get("sid");
      if (!sid || now - (+get("last") || 0) > SESSION_MS) sid = uuid();
      set("sid", sid);
      set("last", String(now));
      return sid;
    };

    // -- the outgoing queue -----------------------------------------------------------------
    // Unsent events are mirrored to localStorage under a per-page key, so events a page
    // could not deliver are sent by the next page of the site. The server deduplicates by
    // messageId, so sending one twice is harmless; losing one is not.
    let queue = [], inflight = [], timer = 0, sending = null, backoff = 0, retryAt = 0;
    const mirrorKey = P + "q_" + uuid().slice(0, 8);
    const mirror = () => {
      if (!ls) return;
      const all = inflight.concat(queue);
      try {
        if (all.length && !disabled()) ls.setItem(mirrorKey, JSON.stringify(all));
        else ls.removeItem(mirrorKey);
      } catch (e) { /* quota */ }
    };
    const sweep = (adopt) => { // pick up (or just delete) other pages' mirrored events
      if (!ls) return;
      const keys = [];
      for (let i = 0; i < ls.length; i++) if ((ls.key(i) || "").indexOf(P + "q_") === 0) keys.push(ls.key(i));
      keys.forEach((k) => {
        try { if (adopt) queue = queue.concat(JSON.parse(ls.getItem(k)) || []); } catch (e) { /* corrupt */ }
        ls.removeItem(k);
      });
    };
    const bytes = (s) => (w.TextEncoder ? new TextEncoder().encode(s).length : s.length * 3);
    const take = () => { // the next batch: at most BATCH_MAX events and about BYTES_MAX bytes
      let n = 0, size = 0;
      while (n < queue.length && n < BATCH_MAX) {
        size += bytes(JSON.stringify(queue[n])) + 1;
        if (n && size > BYTES_MAX) break;
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
      timer = setTimeout(() => { timer = 0; send(); }, ms);
    };
    const settle = (ok, retryAfter) => {
      sending = null;
      if (ok) {
        inflight = [];
        backoff = retryAt = 0;
      } else { // retry later with exponential backoff (or the server's Retry-After)
        if (!disabled()) queue = inflight.concat(queue);
        inflight = [];
        backoff = Math.min(60000, backoff ? backoff * 2 : 1000);
        retryAt = Date.now() + Math.max(backoff * (0.75 + Math.random() / 2), (+retryAfter || 0) * 1000);
      }
      mirror();
      schedule(queue.length >= BATCH_MAX ? 0 : FLUSH_MS);
      return ok;
    };
    // One batch by fetch (text/plain, so no CORS preflight). Resolves to true on success.
    const send = () => {
      if (sending) return sending;
      clearTimeout(timer);
      timer = 0;
      if (disabled() || !queue.length) return Promise.resolve(false);
      inflight = take();
      const payload = body(inflight);
      sending = fetch(endpoint, {
        method: "POST", body: payload, headers: { "Content-Type": "text/plain" },
        credentials: "omit", keepalive: bytes(payload) < 65000,
      }).then((res) => {
        // 4xx other than 429 will never succeed: drop the batch.
        if (res.ok || (res.status >= 400 && res.status < 500 && res.status !== 429)) return settle(true);
        return settle(false, res.headers.get("Retry-After"));
      }, () => settle(false));
      return sending;
    };
    const flush = () => (sending || Promise.resolve()).then(send).then((ok) => (ok && queue.length ? flush() : undefined));
    // The page is going away (or may be killed while hidden): hand everything to sendBeacon.
    const beacon = () => {
      if (disabled() || !queue.length) return;
      if (!nav.sendBeacon) { send(); return; }
      clearTimeout(timer);
      timer = 0;
      while (queue.length) {
        const batch = take();
        let ok = false;
        try { ok = nav.sendBeacon(endpoint, new Blob([body(batch)], { type: "text/plain" })); } catch (e) { /* */ }
        if (!ok) { queue = batch.concat(queue); break; } // stays mirrored for the next page
      }
      mirror();
    };

    // -- events -----------------------------------------------------------------------------
    let lastUrl = null, referrer = d.referrer;
    const tz = () => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return undefined; } };
    const pageInfo = () => ({
      path: location.pathname, url: location.href, referrer, title: d.title, search: location.search,
    });
    const enqueue = (type, fields) => {
      if (disabled()) return;
      const ev = Object.assign({
        type, messageId: uuid(), timestamp: new Date().toISOString(), anonymousId: anonId,
        context: {
          page: pageInfo(), userAgent: nav.userAgent, locale: nav.language, timezone: tz(),
          screen: { width: w.screen.width, height: w.screen.height },
          library: { name: "usertide.js", version: VERSION }, sessionId: session(),
        },
      }, fields);
      if (userId) ev.userId = userId;
      queue.push(ev);
      if (queue.length > QUEUE_MAX) queue.splice(0, queue.length - QUEUE_MAX);
      mirror();
      schedule(queue.length >= BATCH_MAX ? 0 : FLUSH_MS);
    };

    const track = (event, props) => {
      if (event) enqueue("track", { event: String(event), properties: Object.assign({}, props) });
    };
    const page = (name, props) => {
      if (name && typeof name === "object") { props = name; name = undefined; }
      if (disabled()) return;
      if (lastUrl && lastUrl !== location.href) referrer = lastUrl; // SPA: the previous route
      lastUrl = location.href;
      enqueue("page", { name: name == null ? undefined : String(name), properties: Object.assign(pageInfo(), props) });
    };
    const identify = (id, traits) => {
      if (id && typeof id === "object") { traits = id; id = null; }
      if (disabled()) return;
      if (id != null && id !== "") { userId = String(id); set("uid", userId); }
      enqueue("identify", { traits: Object.assign({}, traits) });
    };
    const reset = () => { // a new visitor: new anonymous id and session, no user
      ["uid", "sid", "last"].forEach(del);
      userId = null;
      anonId = uuid();
      set("aid", anonId);
    };
    const autoPage = () => { if (autopage && location.href !== lastUrl) page(); };
    const optOut = () => {
      optedOut = true;
      queue = [];
      inflight = [];
      clearTimeout(timer);
      timer = 0;
      sweep(false);
      mirror();
      ["aid", "uid", "sid", "last"].forEach(del);
      anonId = userId = null;
      try { backend.set(P + "optout", "1"); } catch (e) { /* */ }
    };
    const optIn = () => {
      if (!optedOut) return;
      optedOut = false;
      del("optout");
      if (!dnt) { loadIds(); autoPage(); }
    };

    // -- click autocapture --------------------------------------------------------------------
    const CLICKABLE = "a,button,input[type=submit],input[type=button],[role=button],[data-usertide-event]";
    const esc = (s) => (w.CSS && CSS.escape ? CSS.escape(s) : s.replace(/[^\w-]/g, "\\$&"));
    const selector = (el) => { // "#id", else "tag.class:nth-of-type(n)" parts, <= 5 levels
      const parts = [];
      for (let n = el; n && n.nodeType === 1 && parts.length < 5; n = n.parentElement) {
        if (n.id) { parts.unshift("#" + esc(n.id)); break; }
        const tag = n.tagName.toLowerCase();
        if (tag === "body" || tag === "html") break;
        let part = tag + Array.from(n.classList).slice(0, 3).map((c) => "." + esc(c)).join("");
        const same = n.parentElement ? Array.from(n.parentElement.children).filter((c) => c.tagName === n.tagName) : [];
        if (same.length > 1) part += ":nth-of-type(" + (same.indexOf(n) + 1) + ")";
        parts.unshift(part);
      }
      return parts.join(" > ");
    };
    const label = (el) => { // visible text; never an input's value (passwords, search terms)
      const field = /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
      const text = (!field && (el.innerText || el.textContent)) || el.getAttribute("aria-label") || el.getAttribute("title") || "";
      return text.replace(/\s+/g, " ").trim().slice(0, 100);
    };
    const onClick = (e) => {
      if (!autocapture || disabled()) return;
      let t = e.target;
      if (t && t.nodeType !== 1) t = t.parentElement; // text nodes
      const el = t && t.closest && t.closest(CLICKABLE);
      if (!el || el.closest("[data-usertide-ignore]")) return;
      const named = el.closest("[data-usertide-event]");
      const props = { tag: el.tagName.toLowerCase(), selector: selector(el) };
      const text = label(el);
      if (text) props.text = text;
      if (typeof el.href === "string" && el.href) props.href = el.href;
      track((named && named.getAttribute("data-usertide-event")) || "$click", props);
    };

    // -- start ------------------------------------------------------------------------------------
    if (!disabled()) { loadIds(); sweep(true); } else sweep(false);
    const api = { track, page, identify, reset, optOut, optIn,
      anonymousId: () => anonId, userId: () => userId, sessionId: () => (disabled() ? null : get("sid")) };
    Object.keys(api).forEach((k) => { api[k] = guard(api[k]); });
    api.flush = () => { try { return flush().catch(noop); } catch (e) { return Promise.resolve(); } };
    api.push = guard((args) => {
      const fn = args && args[0] !== "push" && api[args[0]];
      return typeof fn === "function" ? fn(...Array.prototype.slice.call(args, 1)) : undefined;
    });
    Object.defineProperty(api, "__usertide", { value: VERSION });
    w.usertide = api;
    if (Array.isArray(previous)) previous.forEach(api.push); // calls made before we loaded

    autoPage();
    if (autopage) { // single-page apps: a page view per new URL
      const onRoute = () => setTimeout(guard(autoPage), 0);
      ["pushState", "replaceState"].forEach((m) => {
        const orig = history[m];
        if (typeof orig === "function") history[m] = function () { const r = orig.apply(this, arguments); onRoute(); return r; };
      });
      w.addEventListener("popstate", onRoute);
      w.addEventListener("hashchange", onRoute);
    }
    d.addEventListener("click", guard(onClick), true);
    d.addEventListener("visibilitychange", guard(() => { if (d.visibilityState === "hidden") beacon(); }));
    w.addEventListener("pagehide", guard(beacon));
    w.addEventListener("storage", guard((e) => { // opting out in one tab applies to all
      if (e.key === P + "optout") (e.newValue === "1" ? optOut : optIn)();
    }));
    schedule(FLUSH_MS); // events adopted from an earlier page
  } catch (e) { /* never break the host page */ }
})();
