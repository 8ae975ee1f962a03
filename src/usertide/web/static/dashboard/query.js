// What the trends and funnels pages share: the view's definition in the URL's query
// string (so a view can be shared), dates in UTC, and "where" conditions.
"use strict";

const UTQuery = (() => {
  // <input type="datetime-local"> holds "YYYY-MM-DDTHH:MM" without a zone: read as UTC.
  const toIso = (local) => (local ? new Date(local + ":00Z").toISOString() : null);
  const toLocal = (iso) => {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(0, 16);
  };

  // The last `days` days, to the next whole hour.
  function defaultRange(days = 7) {
    const to = new Date();
    to.setUTCMinutes(0, 0, 0);
    to.setUTCHours(to.getUTCHours() + 1);
    const from = new Date(to.getTime() - days * 86400000);
    return { from: from.toISOString(), to: to.toISOString() };
  }

  // "properties.category=4; context.country=US" -> {"properties.category": "4", ...}.
  // Numbers stay strings: the API compares them as the events carry them.
  function parseWhere(text) {
    const where = {};
    for (const part of (text || "").split(";")) {
      const at = part.indexOf("=");
      if (at <= 0) continue;
      const field = part.slice(0, at).trim();
      if (field) where[field] = part.slice(at + 1).trim();
    }
    return Object.keys(where).length ? where : null;
  }

  // Replace the URL's query string with `params` (no reload) and return the new URL.
  function share(params) {
    const url = new URL(location.href);
    url.search = params.toString();
    history.replaceState(null, "", url);
    return url.toString();
  }

  return { toIso, toLocal, defaultRange, parseWhere, share };
})();
