// Trends: POST /v1/trends from the form; the form's state lives in the URL. Traffic
// anomalies (alerts of the traffic_* detectors) in the chart's range are drawn as
// vertical lines at their minute, with the alert's first reason on hover.
"use strict";

(() => {
  const { api, fillRows, number, percent, plot, plotText, time, showError } = UT;
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

  // /v1/alerts filters by neither detector nor time: read the newest and pick ours.
  const ALERTS_READ = 1000;
  const MAX_MARKERS = 200;
  const COLORS = { traffic_spike: "#c23b3b", traffic_drop: "#b26b00" };

  async function trafficAlerts(params) {
    const from = Date.parse(params.get("from") || "");
    const to = Date.parse(params.get("to") || "");
    try {
      const body = await api("/v1/alerts?limit=" + ALERTS_READ);
      return body.alerts
        .filter((a) => {
          const at = Date.parse(a.occurred_at);
          if (!String(a.detector).startsWith("traffic_") || Number.isNaN(at)) return false;
          return (Number.isNaN(from) || at >= from) && (Number.isNaN(to) || at < to);
        })
        .slice(0, MAX_MARKERS);
    } catch (_) {
      return []; // the chart stands without its markers
    }
  }

  // A dotted line over the plot's height, and a ▲/▼ above it that shows the reason on
  // hover (plotly's shapes have no hover of their own).
  function markers(alerts) {
    const shapes = [];
    const annotations = [];
    for (const a of alerts) {
      const first = (a.reasons || [])[0] || {};
      const spike = first.code !== "traffic_drop";
      const color = COLORS[first.code] || COLORS.traffic_spike;
      const why = first.message || first.code || "traffic anomaly";
      shapes.push({
        type: "line",
        xref: "x",
        yref: "paper",
        x0: a.occurred_at,
        x1: a.occurred_at,
        y0: 0,
        y1: 1,
        line: { color, width: 1.5, dash: "dot" },
      });
      annotations.push({
        x: a.occurred_at,
        xref: "x",
        y: 1,
        yref: "paper",
        yanchor: "bottom",
        showarrow: false,
        text: spike ? "▲" : "▼",
        font: { color, size: 13 },
        hovertext: plotText(`${time(a.occurred_at)}: ${why}`),
        hoverlabel: { bgcolor: "#fff", bordercolor: color, font: { color: "#1d2330" } },
      });
    }
    const note = document.getElementById("trend-markers");
    note.hidden = !alerts.length;
    note.textContent = alerts.length
      ? `${alerts.length} traffic ${alerts.length === 1 ? "anomaly" : "anomalies"} in this range (dotted lines; hover ▲ or ▼ for the reason)`
      : "";
    return { shapes, annotations };
  }

  function render(result, alerts) {
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
      margin: { t: 30, r: 20, b: 50, l: 50 }, // room above the plot for the markers
      ...markers(alerts),
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
      const [result, alerts] = await Promise.all([
        api("/v1/trends", { method: "POST", body: request(params) }),
        trafficAlerts(params),
      ]);
      render(result, alerts);
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
