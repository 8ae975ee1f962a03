// Recommendations: click-through per recommender (GET /v1/recommendations/stats, the
// last 7 days by hour: a table and a chart), and what one visitor would see now
// (GET /v1/recommendations for the visitor in the form, read again every few seconds, so
// the list follows the visitor's clicks). Ids and properties are written as text only.
"use strict";

(() => {
  const { api, el, clear, number, percent, time, plot, plotText, showError, fillRows } = UT;
  const main = document.getElementById("recommendations-page");
  const refresh = 1000 * Number(main.dataset.refresh || 3);
  const form = document.getElementById("visitor-form");
  const chooser = document.getElementById("recommender");
  const N = 10;
  let timer = null;
  let asked = 0;

  function rate(r) {
    return r.ctr === null || r.ctr === undefined ? "–" : percent(r.ctr);
  }

  function renderStats(stats) {
    const rows = (stats.recommenders || []).map((r) => [
      r.recommender,
      number(r.impressions),
      number(r.clicks),
      rate(r),
      r.ctr_low === null || r.ctr_low === undefined ? "–" : `${percent(r.ctr_low)} – ${percent(r.ctr_high)}`,
    ]);
    fillRows(
      document.getElementById("ctr-table"),
      rows,
      "No impressions yet: send Recommendation Shown and Recommendation Clicked events " +
        "(usertide.shown / usertide.clicked in the snippet)",
    );
    const byName = new Map();
    for (const p of stats.series || []) {
      if (!byName.has(p.recommender)) byName.set(p.recommender, { x: [], y: [] });
      const s = byName.get(p.recommender);
      s.x.push(p.time);
      s.y.push(p.ctr);
    }
    const traces = [...byName.entries()].map(([name, s]) => ({
      type: "scatter", mode: "lines+markers", name: plotText(name), x: s.x, y: s.y, connectgaps: false,
    }));
    plot(document.getElementById("ctr-chart"), traces, {
      yaxis: { title: { text: "click-through" }, tickformat: ".0%", rangemode: "tozero" },
    });
  }

  function fillChooser(served) {
    if (chooser.options.length) return;
    for (const s of served || []) {
      const option = el("option", { value: s.recommender }, s.recommender + (s.default ? " (default)" : ""));
      if (s.default) option.selected = true;
      chooser.append(option);
    }
    const wanted = new URLSearchParams(location.search).get("recommender");
    if (wanted && [...chooser.options].some((o) => o.value === wanted)) chooser.value = wanted;
  }

  function properties(item) {
    const p = item.properties || {};
    return Object.keys(p).map((k) => `${k}: ${p[k]}`).join(", ");
  }

  async function renderVisitor(mine) {
    const visitor = document.getElementById("visitor").value.trim();
    const user = document.getElementById("user").value.trim();
    const body = document.getElementById("visitor-items");
    const note = document.getElementById("visitor-session");
    if (!visitor && !user) {
      note.textContent = "Enter a visitor's anonymous id (or a user id) to see their recommendations live.";
      fillRows(body, [], "–");
      return;
    }
    const query = new URLSearchParams({ n: String(N) });
    if (visitor) query.set("anonymous_id", visitor);
    else query.set("user_id", user);
    if (chooser.value) query.set("recommender", chooser.value);
    const answer = await api("/v1/recommendations?" + query);
    if (mine !== asked) return;
    const items = answer.session_items || [];
    note.textContent = items.length
      ? `This session (${answer.session_id || "–"}): ${items.join(" → ")} · ${answer.recommender}`
      : `No session in progress: ${answer.recommender} answers from what is popular`;
    fillRows(
      body,
      answer.items.map((item, i) => [String(i + 1), item.item_id, Number(item.score).toFixed(3), properties(item)]),
      "Nothing to recommend yet",
    );
  }

  async function load() {
    clearTimeout(timer);
    const mine = ++asked;
    try {
      const stats = await api("/v1/recommendations/stats?bucket=hour");
      if (mine !== asked) return;
      fillChooser(stats.served);
      renderStats(stats);
      await renderVisitor(mine);
      if (mine !== asked) return;
      document.getElementById("updated").textContent = "updated " + time(new Date().toISOString());
      showError(null);
    } catch (error) {
      if (mine !== asked) return;
      showError(error);
    }
    timer = setTimeout(tick, refresh);
  }

  function tick() {
    if (document.hidden) timer = setTimeout(tick, refresh);
    else load();
  }

  const params = new URLSearchParams(location.search);
  document.getElementById("visitor").value = params.get("visitor") || "";
  document.getElementById("user").value = params.get("user") || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["visitor", "user"]) {
      const value = document.getElementById(name).value.trim();
      if (value) next.set(name, value);
    }
    if (chooser.value) next.set("recommender", chooser.value);
    const search = next.toString();
    history.replaceState(null, "", location.pathname + (search ? "?" + search : ""));
    load();
  });
  chooser.addEventListener("change", () => load());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) load();
  });
  load();
})();
