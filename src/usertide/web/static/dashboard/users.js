// Users: search (GET /v1/users?search=&tag=, paginated), or open a profile by id.
"use strict";

(() => {
  const { api, el, fillRows, time, userHref, userLink, compact, showError } = UT;
  const form = document.getElementById("search-form");
  const table = document.getElementById("user-table");
  const more = document.getElementById("more");

  function row(user) {
    const tags = el("span", { class: "tags" }, ...(user.tags || []).map((t) => el("span", { class: "tag" }, t)));
    const who = user.anonymous ? [userLink(user.user_id), " ", el("small", { class: "muted" }, "anonymous")] : [userLink(user.user_id)];
    return [el("span", {}, ...who), tags, compact(user.traits), time(user.last_seen)];
  }

  let shown = [];
  async function search(params, cursor) {
    const query = new URLSearchParams({ limit: "50" });
    for (const name of ["search", "tag"]) if (params.get(name)) query.set(name, params.get(name));
    if (cursor) query.set("cursor", cursor);
    try {
      const page = await api("/v1/users?" + query);
      shown = cursor ? shown.concat(page.users) : page.users;
      fillRows(table, shown.map(row), "No one matches");
      more.hidden = !page.next_cursor;
      more.onclick = () => search(params, page.next_cursor);
      showError(null);
    } catch (error) {
      if (error.status === 404 && !shown.length) {
        showError("User search is not available on this server yet: open a profile by id.");
      } else {
        showError(error);
      }
    }
  }

  function fromUrl() {
    const params = new URLSearchParams(location.search);
    for (const name of ["search", "tag"]) form.elements[name].value = params.get(name) || "";
    return params;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const name of ["search", "tag"]) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }
    history.replaceState(null, "", "?" + params);
    search(params, null);
  });
  document.getElementById("open-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = event.target.elements.user_id.value.trim();
    if (id) location.assign(userHref(id));
  });
  search(fromUrl(), null);
})();
