// A user's profile: GET /v1/users/{id} (profile, session, sign-in history), their alerts
// (GET /v1/alerts?user_id=) and a timeline of their latest events (GET /v1/events).
"use strict";

(() => {
  const { api, el, clear, fillRows, setFacts, number, time, duration, alertLink, compact, showError } = UT;
  const main = document.getElementById("user");
  const id = main.dataset.userId;
  const loginEvents = new Set(JSON.parse(main.dataset.loginEvents || "[]"));
  const TIMELINE = 50;
  const PAGES = 5; // /v1/events pages oldest first: read at most this many to the newest

  function tags(list, items) {
    clear(list);
    for (const item of items || []) list.append(el("li", { class: "tag" }, typeof item === "string" ? item : compact(item)));
    if (!list.children.length) list.append(el("li", { class: "muted" }, "None"));
  }

  const seenRows = (items) => (items || []).map((s) => [s.label, number(s.count), time(s.first_seen), time(s.last_seen)]);

  function renderProfile(user) {
    const p = user.profile || {};
    const s = user.session || {};
    const logins = user.login_risk || {};
    // Tags and segments: lists at the top level, or inside the tags processor's view.
    const tagView = user.tags;
    const tagList = Array.isArray(tagView) ? tagView : (tagView && tagView.tags) || [];
    let segments = user.segments ?? (tagView && !Array.isArray(tagView) ? tagView.segments : null);
    if (segments && !Array.isArray(segments)) {
      // {"rfm": {"segment": "new", "reason": "..."}} reads as "rfm: new".
      segments = Object.entries(segments).map(([k, v]) =>
        v && typeof v === "object" && "segment" in v ? `${k}: ${v.segment}` : `${k}: ${compact(v)}`,
      );
    }
    document.getElementById("anonymous").textContent = user.anonymous ? "(anonymous visitor)" : "";
    setFacts(document.getElementById("profile"), [
      ["First seen", time(p.first_seen)],
      ["Last seen", time(p.last_seen)],
      ["Events", number(p.events)],
      ["Anonymous ids", (p.anonymous_ids || []).join(", ")],
      ["Most frequent", Object.entries(p.event_counts || {}).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([n, c]) => `${n} (${c})`).join(", ")],
    ]);
    tags(document.getElementById("tags"), tagList);
    tags(document.getElementById("segments"), segments);
    setFacts(document.getElementById("session"), [
      ["Session", s.session_id],
      ["Started", time(s.session_started)],
      ["Last event", time(s.session_last_event)],
      ["Duration", duration(s.session_duration_seconds)],
      ["Events", s.session_events],
      ["Pages", s.session_pages],
      ["Sessions so far", s.sessions],
    ]);
    setFacts(document.getElementById("traits"), Object.entries(p.traits || {}).map(([k, v]) => [k, compact(v)]));
    fillRows(document.getElementById("devices"), seenRows(p.devices));
    fillRows(document.getElementById("places"), seenRows(p.locations));
    document.getElementById("login-summary").textContent = logins.logins
      ? `${logins.logins} learned; countries ${(logins.countries || []).join(", ") || "–"}; ${(logins.pending_review || []).length} waiting for review`
      : "";
  }

  function risk(event, alertsByEvent) {
    const assessed = (event.properties || {}).$risk;
    const alert = alertsByEvent.get(event.id);
    const parts = [];
    if (assessed && typeof assessed === "object") {
      parts.push(`${assessed.level || ""} ${assessed.score !== undefined ? Number(assessed.score).toFixed(2) : ""}`.trim());
    }
    if (alert) parts.push(alertLink(alert.id, `alert: ${alert.level} ${Number(alert.score).toFixed(2)}`));
    return parts.length ? el("span", {}, ...parts.flatMap((p, i) => (i ? [" · ", p] : [p]))) : "–";
  }

  function place(event) {
    const geo = (event.context || {}).geo || {};
    return [geo.city, geo.country].filter(Boolean).join(", ") || "–";
  }

  function device(event) {
    const d = (event.context || {}).device || {};
    return [d.browser, d.os, d.device_type].filter(Boolean).join(" / ") || (event.context || {}).user_agent || "–";
  }

  // The newest events: /v1/events pages from the oldest, so read to the end (bounded).
  async function latestEvents() {
    let events = [];
    let cursor = null;
    for (let page = 0; page < PAGES; page += 1) {
      const query = new URLSearchParams({ user_id: id, limit: "1000" });
      if (cursor) query.set("cursor", cursor);
      const body = await api("/v1/events?" + query);
      events = events.concat(body.events).slice(-TIMELINE * 20);
      cursor = body.next_cursor;
      if (!cursor) return { events, complete: true };
    }
    return { events, complete: false };
  }

  function renderEvents(events, complete, alerts) {
    const alertsByEvent = new Map(alerts.map((a) => [a.event_id, a]));
    // Newest first by event time (the log's order is arrival order).
    const newest = events.slice().reverse().sort((a, b) => Date.parse(b.timestamp) - Date.parse(a.timestamp));
    const signIns = newest.filter((e) => e.type === "track" && loginEvents.has(e.name));
    fillRows(
      document.getElementById("logins"),
      signIns.slice(0, TIMELINE).map((e) => {
        const success = (e.properties || {}).success;
        return [time(e.timestamp), e.name, success === undefined ? "–" : String(success), (e.context || {}).ip || "–", place(e), device(e), risk(e, alertsByEvent)];
      }),
      "No sign-ins",
    );
    fillRows(
      document.getElementById("timeline"),
      newest.slice(0, TIMELINE).map((e) => [time(e.timestamp), e.type, e.name || "", (e.context || {}).page_path || "", compact(e.properties)]),
      "No events",
    );
    document.getElementById("timeline-note").textContent = complete ? "" : "(the latest of the first pages read)";
  }

  async function load() {
    const encoded = encodeURIComponent(id);
    const [user, alerts, events] = await Promise.allSettled([
      api("/v1/users/" + encoded),
      api("/v1/alerts?" + new URLSearchParams({ user_id: id, limit: "200" })),
      latestEvents(),
    ]);
    const problems = [];
    if (user.status === "fulfilled") renderProfile(user.value);
    else problems.push(user.reason.status === 404 ? "No profile for this id (yet)." : String(user.reason.message));
    const alertList = alerts.status === "fulfilled" ? alerts.value.alerts : [];
    fillRows(
      document.getElementById("alerts"),
      alertList.map((a) => [alertLink(a.id, time(a.created_at)), a.level, Number(a.score).toFixed(2), a.status, (a.reasons || []).map((r) => r.message || r.code).join("; ")]),
      "No alerts",
    );
    if (events.status === "fulfilled") renderEvents(events.value.events, events.value.complete, alertList);
    else problems.push(String(events.reason.message));
    showError(problems.length ? problems.join(" ") : null);
  }

  load();
})();
