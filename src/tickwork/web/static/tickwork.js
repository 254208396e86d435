/* tickwork dashboard behaviour. Loaded as a file: the Content-Security-Policy allows no
   inline script. Every page works without it; it adds the live stream, the countdowns,
   the browser time zone, the theme toggle, confirmations and the charts. */
(function () {
  "use strict";

  // -- theme: system, dark, light; remembered in a cookie the server reads ----------------
  function setCookie(name, value) {
    document.cookie = name + "=" + encodeURIComponent(value) +
      "; Path=/; Max-Age=31536000; SameSite=Lax";
  }

  function bindTheme() {
    var btn = document.getElementById("theme-toggle");
    if (!btn) return;
    btn.addEventListener("click", function () {
      var root = document.documentElement;
      var now = root.getAttribute("data-theme") || "system";
      var next = now === "system" ? "dark" : now === "dark" ? "light" : "system";
      if (next === "system") root.removeAttribute("data-theme");
      else root.setAttribute("data-theme", next);
      btn.textContent = "Theme: " + next;
      setCookie("tw_theme", next);
    });
  }

  // -- times: relative countdowns and the browser's zone ------------------------------------
  function relative(ms) {
    var s = Math.round(Math.abs(ms) / 1000);
    var text;
    if (s < 60) text = s + " s";
    else if (s < 3600) text = Math.floor(s / 60) + " min";
    else if (s < 86400) text = Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    else text = Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
    return ms >= 0 ? "in " + text : text + " ago";
  }

  function tickRelative() {
    var now = Date.now();
    document.querySelectorAll("[data-rel]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-rel"));
      if (!isNaN(at)) el.textContent = relative(at - now);
    });
  }

  function browserTimes(root) {
    if (document.body.getAttribute("data-time-mode") !== "browser") return;
    var fmt = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
    });
    // A log line's time of day, to the millisecond, as the server writes it.
    var clock = new Intl.DateTimeFormat(undefined, {
      hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3,
      hourCycle: "h23"
    });
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(at) && !el.hasAttribute("data-local")) {
        el.textContent = (el.hasAttribute("data-clock") ? clock : fmt).format(new Date(at));
        el.setAttribute("data-local", "1");
      }
    });
  }

  function bindTimeMode() {
    var sel = document.getElementById("time-mode");
    if (!sel) return;
    sel.addEventListener("change", function () { sel.form.submit(); });
    var tzField = document.getElementById("browser-zone");
    if (tzField) {
      try { tzField.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser */ }
    }
  }

  // -- confirmations: forms with data-confirm ask first; bulk forms say how many --------------
  function bindConfirm() {
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      var submitter = ev.submitter;
      var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
      if (!message) return;
      if (form.hasAttribute("data-bulk")) {
        var all = form.querySelector("input[name=scope][value=filter]");
        var n = all && all.checked ? parseInt(form.getAttribute("data-total"), 10)
          : document.querySelectorAll("input[name=ids]:checked").length;
        if (!n) { ev.preventDefault(); window.alert("Select schedules first."); return; }
        message = message.replace("{n}", String(n)).replace("{s}", n === 1 ? "" : "s");
      }
      if (!window.confirm(message)) { ev.preventDefault(); return; }
      // Confirmed here: the server skips its own confirmation page.
      var field = form.querySelector("input[name=confirmed]");
      if (!field) {
        field = document.createElement("input");
        field.type = "hidden";
        field.name = "confirmed";
        form.appendChild(field);
      }
      field.value = "1";
    }, true);
    document.addEventListener("change", function (ev) {
      var t = ev.target;
      if (t && t.id === "select-all") {
        document.querySelectorAll("input[name=ids]").forEach(function (c) { c.checked = t.checked; });
      }
    });
  }

  // -- the live stream: one EventSource per page, closed while the tab is hidden --------------
  // htmx's SSE extension asks htmx.createEventSource for its source; this one pauses with the
  // tab and, when shown again, reopens and tells the page to refresh what it missed.
  function PausableSource(url) {
    this.url = url;
    this.listeners = {};
    this.onerror = null;
    this.onopen = null;
    this.readyState = 0;
    this.lastId = null;
    this.pending = null;
    this.open();
    var self = this;
    this.onVisibility = function () {
      if (document.hidden) self.pause();
      else if (!self.closed) { self.open(); self.emit("change", null); }
    };
    document.addEventListener("visibilitychange", this.onVisibility);
  }
  PausableSource.prototype.open = function () {
    if (this.source) return;
    var url = this.url;
    if (this.lastId) url += (url.indexOf("?") >= 0 ? "&" : "?") + "last_event_id=" + encodeURIComponent(this.lastId);
    var src = new EventSource(url, { withCredentials: true });
    var self = this;
    this.source = src;
    src.onopen = function (e) {
      self.readyState = 1;
      setLiveDot(true);
      if (self.onopen) self.onopen(e);
    };
    src.onerror = function (e) {
      setLiveDot(false);
      if (src.readyState === 2) self.close();  // refused (signed out?): htmx retries with a new one
      else self.readyState = src.readyState;
      if (self.onerror) self.onerror(e);
    };
    src.addEventListener("change", function (e) {
      if (e.lastEventId) self.lastId = e.lastEventId;
      self.coalesce(e);
    });
  };
  PausableSource.prototype.pause = function () {
    if (this.source) { this.source.close(); this.source = null; setLiveDot(false); }
  };
  // Bursts of events become at most one refresh per 400 ms, the last one always delivered.
  PausableSource.prototype.coalesce = function (e) {
    var self = this;
    self.last = e;
    if (self.pending) return;
    self.pending = window.setTimeout(function () {
      self.pending = null;
      self.emit("change", self.last);
    }, 400);
  };
  PausableSource.prototype.emit = function (name, e) {
    var evt = e || new MessageEvent(name, { data: "{}" });
    (this.listeners[name] || []).slice().forEach(function (fn) { fn(evt); });
  };
  PausableSource.prototype.addEventListener = function (name, fn) {
    (this.listeners[name] = this.listeners[name] || []).push(fn);
  };
  PausableSource.prototype.removeEventListener = function (name, fn) {
    var l = this.listeners[name] || [];
    var i = l.indexOf(fn);
    if (i >= 0) l.splice(i, 1);
  };
  PausableSource.prototype.close = function () {
    this.closed = true;
    this.readyState = 2;
    this.pause();
    document.removeEventListener("visibilitychange", this.onVisibility);
  };

  function setLiveDot(on) {
    var dot = document.getElementById("live-dot");
    if (dot) {
      dot.classList.toggle("on", on);
      dot.setAttribute("title", on ? "live" : "not live");
    }
    document.body.setAttribute("data-live", on ? "on" : "off");
  }

  // -- charts: uPlot over series the server put in data-chart --------------------------------
  var palette = { succeeded: "--ok", failed: "--danger", skipped: "--idle", missed: "--warn",
                  mean: "--accent", max: "--warn" };

  // Every colour the charts use, read in one style computation (each getComputedStyle
  // read after a chart was added to the page would recompute the styles again).
  function chartColours() {
    var style = getComputedStyle(document.documentElement);
    var colours = {};
    ["--ok", "--danger", "--idle", "--warn", "--accent", "--muted", "--border"].forEach(function (name) {
      colours[name] = style.getPropertyValue(name).trim() || "#888";
    });
    return colours;
  }

  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    var els = Array.prototype.slice.call((root || document).querySelectorAll("[data-chart]"));
    if (!els.length) return;
    var colours = chartColours();
    // All widths read before any chart is drawn: one layout, not one per chart.
    var widths = els.map(function (el) { return Math.max(el.clientWidth || 300, 260); });
    els.forEach(function (el, i) {
      var spec;
      try { spec = JSON.parse(el.getAttribute("data-chart")); } catch (e) { return; }
      el.textContent = "";
      var series = [{}];
      spec.series.forEach(function (name) {
        series.push({ label: name, stroke: colours[palette[name] || "--accent"], width: 2,
                      points: { show: true, size: 5 } });
      });
      /* global uPlot */
      new uPlot({
        width: widths[i], height: 200, series: series,
        axes: [{ stroke: colours["--muted"], grid: { stroke: colours["--border"] } },
               { stroke: colours["--muted"], grid: { stroke: colours["--border"] } }],
        scales: { x: { time: true } }
      }, spec.data, el);
    });
  }

  function afterContent(root) {
    browserTimes(root);
    tickRelative();
    drawCharts(root);
  }

  // Set before htmx processes the page (scripts are deferred, in order, before DOMContentLoaded).
  if (window.htmx) htmx.createEventSource = function (url) { return new PausableSource(url); };

  document.addEventListener("DOMContentLoaded", function () {
    bindTheme();
    bindTimeMode();
    bindConfirm();
    afterContent(document);
    window.setInterval(tickRelative, 1000);
    document.body.addEventListener("htmx:afterSwap", function (e) { afterContent(e.target); });
    // Several live parts refreshed at once may each answer "leave for that page"
    // (HX-Redirect): the page follows the first one only.
    var leaving = false;
    document.body.addEventListener("htmx:beforeOnLoad", function (e) {
      var xhr = e.detail && e.detail.xhr;
      if (!xhr || !xhr.getResponseHeader("HX-Redirect")) return;
      if (leaving) e.preventDefault();
      leaving = true;
    });
    // A live refresh never wipes what someone is doing: rows being selected, a field
    // being typed in, a panel opened.
    document.body.addEventListener("htmx:beforeRequest", function (e) {
      var elt = e.detail && e.detail.elt;
      if (!elt || !elt.hasAttribute("hx-select")) return;
      if (elt.id === "rows" && document.querySelector("input[name=ids]:checked")) {
        e.preventDefault();
        return;
      }
      var active = document.activeElement;
      if (active && elt.contains(active) &&
          active.matches("textarea, select, input:not([type=checkbox]):not([type=radio])")) {
        e.preventDefault();
        return;
      }
      var busy = Array.prototype.some.call(
        elt.querySelectorAll("input[type=text], textarea, input[type=datetime-local]"),
        function (f) { return f.value !== ""; });
      // A panel the page shows open by itself (a failed attempt's traceback) is not one
      // the user opened: it does not hold the refresh back.
      if (busy || elt.querySelector("details[open]:not([data-open-default])")) e.preventDefault();
    });
  });
})();
