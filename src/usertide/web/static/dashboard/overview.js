// The live overview: /v1/overview every few seconds, and the live stream panel
// (server-sent events from /v1/stream where the server has it, else polling /v1/events).
"use strict";

(() => {
  const { api, el, fillRanked, fillRows, number, time, userLink, plot, showError } = UT;
  const main = document.getElementById("overview");
  const refresh = 1000 * Number(main.dataset.refresh || 3);
  const MAX_ROWS = 30;
  let firstOffset = null; // the log's head when the page opened: polling starts there

  const $ = (id) => document.getElementById(id);

  function render(o) {
    const perMinute = o.events_per_minute;
    const last = perMinute.length ? perMinute[perMinute.length - 1][1] : 0;
    $("window").textContent = o.minutes;
    $("active-minutes").textContent = o.active_minutes;
    $("stat-last-minute").textContent = number(last);
    $("stat-window").textContent = number(o.events_in_window);
    $("stat-active").textContent = number(o.active_users);
    $("stat-total").textContent = number(o.events_total);
    $("stat-failed").textContent = number(o.failed.total);
    $("stat-lag").textContent = number(o.engine.lag_events);
    $("stat-lag").classList.toggle("warn", o.engine.lag_events > 1000 || !o.engine.alive);
    $("updated").textContent = "updated " + time(o.generated_at);
    plot(
      $("epm-chart"),
      [
        {
          type: "bar",
          x: perMinute.map((p) => p[0]),
          y: perMinute.map((p) => p[1]),
          name: "events",
          hovertemplate: "%{x|%H:%M} UTC: %{y} events<extra></extra>",
          marker: { color: "#3b6fd8" },
        },
      ],
      { xaxis: { type: "date" }, yaxis: { rangemode: "tozero" }, height: 260 },
    );
    fillRanked($("top-events"), o.top_events);
    fillRanked($("top-pages"), o.top_pages);
    fillRanked($("countries"), o.countries);
    fillRanked($("sources"), o.sources);
    fillRanked(
      $("failed-reasons"),
      o.failed.reasons.map((r) => ({ value: r.reason, count: r.count })),
      "No failed events in this window",
    );
    fillRows(
      $("failed-recent"),
      o.failed.recent.map((f) => [time(f.received_at), f.reason, f.message, f.source]),
      "None",
    );
    if (firstOffset === null) firstOffset = o.engine.log_offset;
  }

  async function poll() {
    try {
      render(await api("/v1/overview?minutes=60"));
      showError(null);
    } catch (error) {
      showError(error);
    }
    setTimeout(poll, refresh);
  }

  // -- the live stream panel ----------------------------------------------------------
  const rows = $("stream").tBodies[0];

  function addRow(kind, data) {
    const context = data.context || {};
    const geo = context.geo || {};
    const label =
      kind === "event"
        ? data.name || "$" + (data.type || "event")
        : data.detector || data.code || data.name || kind;
    const who = data.user_id || data.anonymous_id || data.user || null;
    const row = el(
      "tr",
      { class: "kind-" + kind },
      el("td", {}, time(data.timestamp || data.created_at || data.received_at)),
      el("td", {}, kind),
      el("td", { class: "ident" }, label),
      el("td", {}, userLink(who)),
      el("td", {}, context.page_path || ""),
      el("td", {}, geo.country || ""),
    );
    rows.prepend(row);
    while (rows.rows.length > MAX_ROWS) rows.deleteRow(rows.rows.length - 1);
  }

  // The panel opens with the latest events (read from /v1/events just before the log's
  // head), then follows the stream; messages that arrive while it reads wait, and any
  // event it has already shown (by log offset) is skipped.
  let shownThrough = 0;
  function addEvent(event) {
    if (event.offset !== undefined && event.offset !== null) {
      if (event.offset <= shownThrough) return;
      shownThrough = event.offset;
    }
    addRow("event", event);
  }

  async function latest() {
    while (firstOffset === null) await new Promise((r) => setTimeout(r, 200));
    const cursor = Math.max(0, firstOffset - 20);
    try {
      const page = await api(`/v1/events?limit=100&cursor=${cursor}`);
      for (const event of page.events) addEvent(event);
    } catch (_) {
      /* the overview shows errors */
    }
    shownThrough = Math.max(shownThrough, cursor);
  }

  function listen() {
    $("stream-mode").textContent = "(live)";
    const waiting = [];
    let ready = false;
    const source = new EventSource("/v1/stream", { withCredentials: true });
    for (const kind of ["event", "detection", "alert"]) {
      source.addEventListener(kind, (message) => {
        let data;
        try {
          data = JSON.parse(message.data);
        } catch (_) {
          return; /* a message we cannot read: skip it */
        }
        if (!ready) waiting.push([kind, data]);
        else if (kind === "event") addEvent(data);
        else addRow(kind, data);
      });
    }
    source.addEventListener("error", () => {
      // EventSource reconnects by itself; once it gives up, fall back to polling.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        pollEvents();
      }
    });
    latest().then(() => {
      ready = true;
      for (const [kind, data] of waiting.splice(0)) {
        if (kind === "event") addEvent(data);
        else addRow(kind, data);
      }
    });
  }

  async function pollEvents() {
    $("stream-mode").textContent = "(every 2 s)";
    if (!shownThrough) await latest();
    try {
      const page = await api(`/v1/events?limit=100&cursor=${shownThrough}`);
      for (const event of page.events) addEvent(event);
    } catch (_) {
      /* the overview shows errors; try again later */
    }
    setTimeout(pollEvents, 2000);
  }

  poll();
  if (main.dataset.stream === "1" && window.EventSource) listen();
  else pollEvents();
})();
