// Trends: POST /v1/trends from the form; the form's state lives in the URL.
"use strict";

(() => {
  const { api, fillRows, number, percent, plot, plotText, showError } = UT;
  const { toIso, toLocal, defaultRange, parseWhere, share } = UTQuery;
  const form = document.getElementById("trend-form");
  const FIELDS = ["events", "measure", "property", "interval", "from", "to", "breakdown", "where"];

  function fromUrl() {
    const params = new URLSearchParams(location.search);
    const range = defaultRange();
    for (const name of FIELDS) {
      const value = params.get(name);
      if (value === null) continue;
      form.elements[name].value = name === "from" || name === "to" ? toLocal(value) : value;
    }
    if (!form.elements.from.value) form.elements.from.value = toLocal(range.from);
    if (!form.elements.to.value) form.elements.to.value = toLocal(range.to);
    form.elements.compare.checked = params.get("compare") === "previous_period";
    return params.has("events");
  }

  function toParams() {
    const params = new URLSearchParams();
    for (const name of FIELDS) {
      let value = form.elements[name].value.trim();
      if (name === "from" || name === "to") value = toIso(value) || "";
      if (value) params.set(name, value);
    }
    if (form.elements.compare.checked) params.set("compare", "previous_period");
    return params;
  }

  function request(params) {
    const events = (params.get("events") || "").split(",").map((e) => e.trim()).filter(Boolean);
    const kind = params.get("measure") || "count";
    const property = params.get("property");
    const measure = kind === "sum" || kind === "avg" ? { [kind]: property || "" } : kind;
    const body = {
      events,
      measure,
      interval: params.get("interval") || "day",
      from: params.get("from"),
      to: params.get("to"),
    };
    if (params.get("breakdown")) body.breakdown = params.get("breakdown");
    if (params.get("compare")) body.compare = params.get("compare");
    const where = parseWhere(params.get("where"));
    if (where) body.where = where;
    return body;
  }

  const label = (s) => (s.breakdown === null || s.breakdown === undefined ? s.event : `${s.event} · ${s.breakdown}`);
  const keyOf = (s) => JSON.stringify([s.event, s.breakdown ?? null]);

  // A point is [time, value] and may carry an interval: [time, value, low, high] or
  // [time, value, {low, high}].
  function interval(point) {
    if (point.length >= 4) return { low: point[2], high: point[3] };
    if (point[2] && typeof point[2] === "object") return point[2];
    return null;
  }

  function trace(series, x, dashed) {
    const y = series.points.map((p) => p[1]);
    const t = {
      type: "scatter",
      mode: "lines+markers",
      x,
      y,
      name: plotText(label(series) + (dashed ? " (previous period)" : "")),
      line: dashed ? { dash: "dot" } : {},
      hovertemplate: "%{x}: %{y}<extra>%{fullData.name}</extra>",
    };
    const bounds = series.points.map(interval);
    if (bounds.some(Boolean)) {
      t.error_y = {
        type: "data",
        symmetric: false,
        array: bounds.map((b, i) => (b ? b.high - y[i] : 0)),
        arrayminus: bounds.map((b, i) => (b ? y[i] - b.low : 0)),
      };
    }
    return t;
  }

  function render(result) {
    const series = result.series || [];
    const previous = new Map((result.previous || []).map((s) => [keyOf(s), s]));
    const traces = [];
    for (const s of series) {
      const x = s.points.map((p) => p[0]);
      traces.push(trace(s, x, false));
      const before = previous.get(keyOf(s));
      // The previous period drawn on this period's times, point by point.
      if (before) traces.push(trace(before, x.slice(0, before.points.length), true));
    }
    plot(document.getElementById("trend-chart"), traces, {
      xaxis: { type: "date" },
      yaxis: { rangemode: "tozero" },
      showlegend: true, // even for one series: the legend names it
      height: 360,
    });
    fillRows(
      document.getElementById("trend-table"),
      series.map((s) => {
        const before = previous.get(keyOf(s));
        const change = before && before.total ? s.total / before.total - 1 : null;
        return [
          s.event,
          s.breakdown ?? "",
          number(s.total),
          before ? number(before.total) : "",
          change === null ? "" : (change >= 0 ? "+" : "") + percent(change),
        ];
      }),
      "No data in this range",
    );
  }

  async function run(params) {
    const link = document.getElementById("share");
    link.href = share(params);
    try {
      render(await api("/v1/trends", { method: "POST", body: request(params) }));
      showError(null);
    } catch (error) {
      showError(error);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(toParams());
  });
  if (fromUrl()) run(toParams());
})();
