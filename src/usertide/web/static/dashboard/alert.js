// One alert: its evidence, and the admin's answer (POST /v1/alerts/{id}/feedback).
"use strict";

(() => {
  const { api, el, clear, fillRows, setFacts, time, userLink, compact, showError } = UT;
  const id = document.getElementById("alert-page").dataset.alertId;
  const path = "/v1/alerts/" + encodeURIComponent(id);

  function render(a) {
    document.getElementById("status").textContent = a.status;
    setFacts(document.getElementById("summary"), [
      ["User", userLink(a.user_id)],
      ["Detector", a.detector],
      ["Level", a.level],
      ["Score", Number(a.score).toFixed(3)],
      ["Occurred", time(a.occurred_at)],
      ["Created", time(a.created_at)],
      ["Updated", time(a.updated_at)],
      ["Event", a.event_id],
    ]);
    const reasons = clear(document.getElementById("reasons"));
    for (const r of a.reasons || []) {
      reasons.append(el("li", {}, el("strong", {}, r.code), " ", r.message));
    }
    if (!reasons.children.length) reasons.append(el("li", { class: "muted" }, "None given"));
    setFacts(
      document.getElementById("evidence"),
      Object.entries(a.data || {}).map(([k, v]) => [k, compact(v)]),
    );
    fillRows(
      document.getElementById("feedback"),
      (a.feedback || []).map((f) => [time(f.at), f.verdict, f.source]),
      "No answer yet",
    );
  }

  async function load() {
    try {
      render(await api(path));
      showError(null);
    } catch (error) {
      showError(error);
    }
  }

  for (const button of document.querySelectorAll("[data-verdict]")) {
    button.addEventListener("click", async () => {
      const verdict = button.dataset.verdict;
      try {
        render(await api(path + "/feedback", { method: "POST", body: { verdict } }));
        document.getElementById("answered").textContent = `Recorded: ${verdict}. The model learns from it.`;
        showError(null);
      } catch (error) {
        showError(error);
      }
    });
  }
  load();
})();
