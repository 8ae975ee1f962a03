// Funnels: POST /v1/funnels from the form (steps in the URL as repeated step/where
// pairs), the conversion of each step with its 95% credible interval, and the people
// who dropped at a step (POST /v1/funnels/users, paginated).
"use strict";

(() => {
  const { api, el, fillRows, number, percent, duration, userLink, plot, plotText, showError } = UT;
  const { toIso, toLocal, defaultRange, parseWhere, share } = UTQuery;
  const form = document.getElementById("funnel-form");
  const steps = document.getElementById("steps");
  const template = document.getElementById("step-template");
  const FIELDS = ["window", "order", "from", "to", "breakdown"];
  let current = null; // the last funnel asked for: the people list pages through it

  function addStep(event = "", where = "") {
    const item = template.content.firstElementChild.cloneNode(true);
    item.querySelector('[name="step-event"]').value = event;
    item.querySelector('[name="step-where"]').value = where;
    item.querySelector(".remove-step").addEventListener("click", () => {
      if (steps.children.length > 2) item.remove();
    });
    steps.append(item);
  }

  function fromUrl() {
    const params = new URLSearchParams(location.search);
    const names = params.getAll("step");
    const wheres = params.getAll("where");
    names.forEach((name, i) => addStep(name, wheres[i] || ""));
    while (steps.children.length < 2) addStep();
    const range = defaultRange();
    for (const name of FIELDS) {
      const value = params.get(name);
      if (value !== null) form.elements[name].value = name === "from" || name === "to" ? toLocal(value) : value;
    }
    if (!form.elements.from.value) form.elements.from.value = toLocal(range.from);
    if (!form.elements.to.value) form.elements.to.value = toLocal(range.to);
    return names.length >= 2;
  }

  function toParams() {
    const params = new URLSearchParams();
    for (const item of steps.children) {
      params.append("step", item.querySelector('[name="step-event"]').value.trim());
      params.append("where", item.querySelector('[name="step-where"]').value.trim());
    }
    for (const name of FIELDS) {
      let value = form.elements[name].value.trim();
      if (name === "from" || name === "to") value = toIso(value) || "";
      if (value) params.set(name, value);
    }
    return params;
  }

  function request(params) {
    const wheres = params.getAll("where");
    const body = {
      steps: params.getAll("step").map((event, i) => {
        const where = parseWhere(wheres[i]);
        return where ? { event, where } : { event };
      }),
      window: params.get("window") || "3d",
      order: params.get("order") || "sequential",
      from: params.get("from"),
      to: params.get("to"),
    };
    if (params.get("breakdown")) body.breakdown = params.get("breakdown");
    return body;
  }

  const interval = (p) => (p ? `${percent(p.mean)} (${percent(p.low)}–${percent(p.high)})` : "–");
  const stepLabel = (step, i) => plotText(`${i + 1}. ${step.event}`);

  // Error bars from a step's posterior (the conversion from the previous step).
  function errorBars(list) {
    const posts = list.map((s) => (s.conversion ? s.conversion.posterior : null));
    return {
      y: posts.map((p) => (p ? p.mean : null)), // the first step has no rate
      error_y: {
        type: "data",
        symmetric: false,
        array: posts.map((p) => (p ? p.high - p.mean : 0)),
        arrayminus: posts.map((p) => (p ? p.mean - p.low : 0)),
      },
    };
  }

  function chart(result) {
    const x = result.steps.map(stepLabel);
    let traces;
    if (result.breakdown && result.breakdown.length) {
      traces = result.breakdown.map((group) => ({
        type: "bar",
        x: group.steps.map(stepLabel),
        name: plotText(group.value === null ? "(none)" : String(group.value)),
        hovertemplate: "%{x}: %{y:.1%}<extra>%{fullData.name}</extra>",
        ...errorBars(group.steps),
      }));
    } else {
      traces = [
        {
          type: "bar",
          x,
          y: result.steps.map((s) => s.users),
          name: "people",
          marker: { color: "#9db7ea" },
          hovertemplate: "%{x}: %{y} people<extra></extra>",
        },
        {
          type: "scatter",
          mode: "markers",
          x,
          name: "conversion from the previous step (95% interval)",
          yaxis: "y2",
          marker: { size: 10, color: "#1c3f94" },
          hovertemplate: "%{x}: %{y:.1%}<extra></extra>",
          ...errorBars(result.steps),
        },
      ];
    }
    plot(document.getElementById("funnel-chart"), traces, {
      barmode: "group",
      height: 360,
      margin: { t: 20, r: 60, b: 50, l: 60 },
      yaxis: result.breakdown ? { tickformat: ".0%", range: [0, 1.05], dtick: 0.25 } : { title: { text: "people" } },
      yaxis2: { overlaying: "y", side: "right", tickformat: ".0%", range: [0, 1.05], dtick: 0.25 },
    });
  }

  function table(result) {
    fillRows(
      document.getElementById("funnel-table"),
      result.steps.map((s, i) => {
        const c = s.conversion;
        const t = s.time_to_convert;
        const actions = el("span", { class: "actions" });
        if (i > 0) {
          actions.append(
            el("button", { type: "button", onclick: () => people(i + 1, "dropped", null) }, "Dropped here"),
            el("button", { type: "button", onclick: () => people(i + 1, "converted", null) }, "Converted"),
          );
        }
        return [
          String(i + 1),
          s.event,
          number(s.users),
          number(s.dropped),
          c ? interval(c.posterior) : "–",
          c ? percent(c.from_first) : "100%",
          t ? duration(t.median_s) : "–",
          t ? duration(t.p90_s) : "–",
          actions,
        ];
      }),
    );
    const overall = result.overall || {};
    document.getElementById("overall").textContent = overall.posterior
      ? `whole funnel: ${number(overall.users)} people, ${interval(overall.posterior)}`
      : "";
    const card = document.getElementById("breakdown-card");
    card.hidden = !(result.breakdown && result.breakdown.length);
    if (!card.hidden) {
      fillRows(
        document.getElementById("breakdown-table"),
        result.breakdown.map((g) => [
          g.value === null ? "(none)" : String(g.value),
          number(g.steps[0].users),
          number(g.overall.users),
          interval(g.overall.posterior),
          percent(g.probability_best),
        ]),
      );
    }
  }

  async function people(step, status, cursor) {
    const card = document.getElementById("people-card");
    const list = document.getElementById("people");
    const more = document.getElementById("people-more");
    card.hidden = false;
    if (!cursor) {
      list.replaceChildren();
      const name = current.steps[step - 1].event;
      document.getElementById("people-title").textContent =
        status === "dropped" ? `Dropped before step ${step} (${name})` : `Reached step ${step} (${name})`;
    }
    try {
      const page = await api("/v1/funnels/users", {
        method: "POST",
        body: { ...current, step, status, limit: 50, cursor },
      });
      for (const user of page.users) list.append(el("li", {}, userLink(user.user_id)));
      if (!list.children.length) list.append(el("li", { class: "muted" }, "Nobody"));
      more.hidden = !page.next_cursor;
      more.onclick = () => people(step, status, page.next_cursor);
      showError(null);
    } catch (error) {
      showError(error);
    }
  }

  async function run(params) {
    document.getElementById("share").href = share(params);
    current = request(params);
    document.getElementById("people-card").hidden = true;
    try {
      const result = await api("/v1/funnels", { method: "POST", body: current });
      chart(result);
      table(result);
      showError(null);
    } catch (error) {
      showError(error);
    }
  }

  document.getElementById("add-step").addEventListener("click", () => addStep());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(toParams());
  });
  if (fromUrl()) run(toParams());
})();
