// Sessions: the most anomalous sessions now (GET /v1/sessions?order=score), with their
// reasons, read again every few seconds. "Anomalous only" (in the URL) asks for
// label=Anomaly. Whether a session model is in force comes from GET /v1/models: without
// one no session has a score, and the table says how one comes to be.
"use strict";

(() => {
  const { api, el, clear, number, percent, time, userHref, showError } = UT;
  const main = document.getElementById("sessions-page");
  const refresh = 1000 * Number(main.dataset.refresh || 3);
  const table = document.getElementById("session-table");
  const toggle = document.getElementById("anomalous-only");
  const LIMIT = 50;
  const MODEL = "session_anomaly";
  const HEAD_REASON = "abnormal_session"; // "score above the 99th percentile": the score says it
  const SHOWN_REASONS = 3;
  const NO_MODEL =
    "No session model trained yet — it trains from stored sessions on its schedule " +
    "(or now: POST /v1/models/session_anomaly/train with the admin key).";

  let timer = null;
  let asked = 0; // each load's number: an answer older than the latest asked is dropped

  function inForce(models) {
    const version = (models.active || {})[MODEL];
    if (!version) return null;
    return (models.models || []).find((m) => m.name === MODEL && m.version === version) || { version };
  }

  function describe(model) {
    if (!model) return "No session model in force.";
    const parts = [`Model ${MODEL} v${model.version}`];
    if (model.kind) parts.push(model.kind);
    if (model.rows) parts.push(`learned from ${number(model.rows)} sessions`);
    if (model.trained_from && model.trained_to) {
      parts.push(`${time(model.trained_from)} to ${time(model.trained_to)}`);
    }
    return parts.join(" · ");
  }

  // The reasons worth reading: the features that stand out, before the score's own line.
  function reasons(anomaly) {
    const all = (anomaly && anomaly.reasons) || [];
    const telling = all.filter((r) => r.code !== HEAD_REASON);
    const shown = (telling.length ? telling : all).slice(0, SHOWN_REASONS);
    return shown.map((r) => r.message || r.code).join("; ");
  }

  function who(s) {
    if (s.user_id) return el("a", { href: userHref(s.user_id), class: "ident" }, s.user_id);
    if (s.anonymous_id) {
      return el(
        "span",
        {},
        el("a", { href: userHref(s.anonymous_id), class: "ident" }, s.anonymous_id),
        " ",
        el("small", {}, "visitor"),
      );
    }
    return "–";
  }

  function row(s) {
    const a = s.anomaly;
    const label = a && a.label ? a.label : "unscored";
    const conversion = hasProbability(s) ? s.conversion.probability : null;
    const cells = [
      [a && a.score !== null && a.score !== undefined ? Number(a.score).toFixed(3) : "–", "num"],
      [label, "label"],
      [who(s), null],
      [el("span", { class: "ident" }, s.session_id), null],
      [time(s.started), "when"],
      [s.closed ? time(s.ended) : el("span", {}, time(s.ended), " ", el("small", {}, "live")), "when"],
      [number(s.events), "num"],
      [number(s.pages), "num"],
      [reasons(a), "reasons"],
      [conversion === null ? "–" : percent(conversion), "conversion num"],
      [a && a.model_version ? `v${a.model_version}` : "–", null],
    ];
    return el(
      "tr",
      { class: "label-" + label.toLowerCase(), dataset: { session: s.session_id } },
      ...cells.map(([value, cls]) => el("td", { class: cls }, value)),
    );
  }

  function render(sessions, model) {
    const body = clear(table.tBodies[0]);
    const columns = table.tHead.rows[0].cells.length;
    const empty = (text) => body.append(el("tr", { class: "empty" }, el("td", { colspan: columns }, text)));
    document.getElementById("model-note").textContent = describe(model);
    table.classList.toggle("no-conversion", !sessions.some(hasProbability));
    if (!model) empty(NO_MODEL);
    else if (!sessions.length) empty(toggle.checked ? "No anomalous sessions now" : "No sessions yet");
    else for (const s of sessions) body.append(row(s));
  }

  async function load() {
    clearTimeout(timer);
    const mine = ++asked;
    const query = new URLSearchParams({ order: "score", limit: String(LIMIT) });
    if (toggle.checked) query.set("label", "Anomaly");
    try {
      const [page, models] = await Promise.all([api("/v1/sessions?" + query), api("/v1/models")]);
      if (mine !== asked) return;
      render(page.sessions, inForce(models));
      document.getElementById("updated").textContent = "updated " + time(new Date().toISOString());
      showError(null);
    } catch (error) {
      if (mine !== asked) return;
      showError(error);
    }
    timer = setTimeout(tick, refresh);
  }

  function tick() {
    // A hidden tab reads nothing; it catches up when it is shown again.
    if (document.hidden) timer = setTimeout(tick, refresh);
    else load();
  }

  toggle.checked = new URLSearchParams(location.search).get("anomalous") === "1";
  toggle.addEventListener("change", () => {
    const params = new URLSearchParams(location.search);
    if (toggle.checked) params.set("anomalous", "1");
    else params.delete("anomalous");
    const search = params.toString();
    history.replaceState(null, "", location.pathname + (search ? "?" + search : ""));
    load();
  });
  document.getElementById("session-filter").addEventListener("submit", (event) => event.preventDefault());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) load();
  });
  load();
})();

function hasProbability(s) {
  return Boolean(s.conversion) && typeof s.conversion.probability === "number";
}
