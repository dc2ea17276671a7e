// The console's only script: keep the admin token for this tab, fetch server-rendered fragments with it,
// ask before promote / rollback, post the forms. Every figure is computed by the server.
"use strict";
(function () {
  const KEY = "recsys-admin-token";
  const view = document.getElementById("view");
  const login = document.getElementById("login");
  const nav = document.getElementById("nav");
  const loginError = document.getElementById("login-error");

  function token() { return sessionStorage.getItem(KEY); }

  function showLogin(message) {
    sessionStorage.removeItem(KEY);
    nav.hidden = true;
    view.innerHTML = "";
    login.hidden = false;
    loginError.hidden = !message;
    loginError.textContent = message || "";
  }

  async function call(method, url, body) {
    const init = { method: method, headers: { "Authorization": "Bearer " + token() } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    view.setAttribute("aria-busy", "true");
    try {
      const resp = await fetch(url, init);
      if (resp.status === 401 || resp.status === 403) {
        const detail = await resp.json().catch(() => ({}));
        showLogin(resp.status === 401 ? "Wrong token." : (detail.detail || "Admin is disabled."));
        return;
      }
      const text = await resp.text();
      view.innerHTML = resp.ok ? text : '<p class="flash bad">' + resp.status + ": " +
        text.replace(/[<>&]/g, "") + "</p>";
      view.dataset.page = url;
    } finally {
      view.removeAttribute("aria-busy");
    }
  }

  function route() {
    if (!token()) { showLogin(""); return; }
    login.hidden = true;
    nav.hidden = false;
    const hash = location.hash.replace(/^#/, "") || "overview";
    const [page, query] = hash.split("?");
    for (const a of nav.querySelectorAll("a")) {
      a.classList.toggle("active", a.dataset.page === page);
    }
    call("GET", "/console/view/" + encodeURIComponent(page) + (query ? "?" + query : ""));
  }

  login.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("token").value);
    document.getElementById("token").value = "";
    route();
  });
  document.getElementById("logout").addEventListener("click", () => showLogin(""));
  window.addEventListener("hashchange", route);

  view.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.classList.contains("promote")) {
      if (confirm("Serve model " + b.dataset.version + " now?")) {
        call("POST", "/console/models/promote", { version: b.dataset.version });
      }
    } else if (b.classList.contains("rollback")) {
      if (confirm("Roll back to the model promoted before the current one?")) {
        call("POST", "/console/models/rollback");
      }
    } else if (b.classList.contains("run-job")) {
      if (confirm("Run " + b.dataset.job + " now?")) {
        call("POST", "/console/jobs/run", { job: b.dataset.job });
      }
    } else if (b.classList.contains("refresh-view")) {
      route();
    }
  });

  view.addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    const user = (view.querySelector(".try-form input[name=user]") || {}).value || "";
    if (form.classList.contains("try-form")) {
      const hash = "#try?user=" + encodeURIComponent(user);
      if (location.hash === hash) route(); else location.hash = hash;
    } else if (form.classList.contains("event-form")) {
      call("POST", "/console/try/event", {
        user_id: user, item_id: form.elements.item_id.value, event: form.elements.event.value,
      });
    }
  });

  route();
})();
