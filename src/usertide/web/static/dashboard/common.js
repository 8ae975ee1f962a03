// Shared by every dashboard page: API calls with the session, safe DOM building,
// formatting, and charts.
//
// Everything shown comes from users and their events, so it is put into the page only
// as text (textContent, createElement), never as HTML, and chart labels are escaped for
// plotly (which reads a few HTML-like tags in labels).
"use strict";

const UT = (() => {
  const csrf = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function signInAgain() {
    const here = location.pathname + location.search + location.hash;
    location.assign("/dashboard/login?next=" + encodeURIComponent(here));
  }

  // fetch() with the session cookie; unsafe methods carry the session's CSRF token.
  async function api(path, options = {}) {
    const method = options.method || "GET";
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf();
    let body;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (response.status === 401) {
      signInAgain(); // the session ended (expired, signed out elsewhere, server restarted)
      throw new ApiError(401, "unauthorized", "signed out");
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || "error", error.message || response.statusText);
    }
    return data;
  }

  // el("a", {href: "/x", class: "c"}, "text", child): children become text or nodes.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  // Rows of cells (text or nodes) into a table's tbody (or the table itself).
  function fillRows(table, rows, empty = "Nothing yet") {
    const body = table.tBodies[0] || table;
    const columns = table.tHead ? table.tHead.rows[0].cells.length : 1;
    clear(body);
    if (!rows.length) {
      body.append(el("tr", { class: "empty" }, el("td", { colspan: columns }, empty)));
      return;
    }
    for (const cells of rows) body.append(el("tr", {}, ...cells.map((c) => el("td", {}, c))));
  }

  // A ranked list ([{value, count}]) as a table with a bar per row.
  function fillRanked(table, items, empty = "Nothing yet") {
    const max = Math.max(1, ...items.map((i) => i.count));
    clear(table);
    if (!items.length) {
      table.append(el("tr", { class: "empty" }, el("td", {}, empty)));
      return;
    }
    for (const item of items) {
      const bar = el("span", { class: "bar" });
      bar.style.width = `${Math.round((100 * item.count) / max)}%`;
      table.append(
        el(
          "tr",
          {},
          el("td", { class: "name" }, el("span", { class: "bar-back" }, bar), el("span", {}, item.value)),
          el("td", { class: "num" }, number(item.count)),
        ),
      );
    }
  }

  function setFacts(dl, pairs) {
    clear(dl);
    for (const [term, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      dl.append(el("dt", {}, term), el("dd", {}, value instanceof Node ? value : String(value)));
    }
    if (!dl.children.length) dl.append(el("dd", { class: "muted" }, "Nothing"));
  }

  const number = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));
  const percent = (x, digits = 1) =>
    x === null || x === undefined ? "–" : `${(100 * x).toFixed(digits)}%`;

  function time(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Number(seconds);
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }

  const userHref = (id) => "/dashboard/users/" + encodeURIComponent(id);
  const userLink = (id) => (id ? el("a", { href: userHref(id), class: "ident" }, id) : "–");
  const alertLink = (id, text) => el("a", { href: "/dashboard/alerts/" + encodeURIComponent(id) }, text || id);

  function compact(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "object") {
      const text = JSON.stringify(value);
      return text === "{}" ? "" : text;
    }
    return String(value);
  }

  // Plotly reads <b>, <br>, <a href> and entities in labels: escape so a hostile event
  // name or property value is drawn as the text it is.
  const plotText = (s) =>
    String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

  function plot(div, traces, layout = {}) {
    const base = {
      margin: { t: 20, r: 20, b: 50, l: 50 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, sans-serif", size: 12 },
      legend: { orientation: "h" },
    };
    const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage"] };
    if (!window.Plotly) {
      clear(div).append(el("p", { class: "error" }, "The charting library did not load."));
      return;
    }
    window.Plotly.react(div, traces, { ...base, ...layout }, config);
  }

  function showError(error) {
    const box = document.getElementById("error");
    if (!box) return;
    if (!error) {
      box.hidden = true;
      box.textContent = "";
      return;
    }
    box.hidden = false;
    box.textContent = error instanceof ApiError ? `${error.message} (${error.status})` : String(error);
  }

  return {
    ApiError,
    api,
    el,
    clear,
    fillRows,
    fillRanked,
    setFacts,
    number,
    percent,
    time,
    duration,
    userHref,
    userLink,
    alertLink,
    compact,
    plotText,
    plot,
    showError,
  };
})();
