// Alerts: GET /v1/alerts filtered by status and user (the filter lives in the URL).
"use strict";

(() => {
  const { api, fillRows, time, userLink, alertLink, showError } = UT;
  const form = document.getElementById("alert-filter");

  async function load(params) {
    const query = new URLSearchParams({ limit: "200" });
    for (const name of ["status", "user_id"]) if (params.get(name)) query.set(name, params.get(name));
    try {
      const body = await api("/v1/alerts?" + query);
      fillRows(
        document.getElementById("alert-table"),
        body.alerts.map((a) => [
          alertLink(a.id, time(a.created_at)),
          userLink(a.user_id),
          a.detector,
          a.level,
          Number(a.score).toFixed(2),
          a.status,
          (a.reasons || []).map((r) => r.message || r.code).join("; "),
        ]),
        "No alerts",
      );
      showError(null);
    } catch (error) {
      showError(error);
    }
  }

  const params = new URLSearchParams(location.search);
  for (const name of ["status", "user_id"]) form.elements[name].value = params.get(name) || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["status", "user_id"]) {
      const value = form.elements[name].value.trim();
      if (value) next.set(name, value);
    }
    history.replaceState(null, "", "?" + next);
    load(next);
  });
  load(params);
})();
