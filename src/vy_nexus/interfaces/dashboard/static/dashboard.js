// vy-nexus dashboard: live parts of the page. One Server-Sent Events stream (/dashboard/api/live) ticks every few
// seconds; on each tick the page's [data-fragment] parts are fetched again and its charts redrawn. Without
// EventSource, or when the stream stays down, the same refresh runs on a timer (polling).
(function () {
  "use strict";
  var POLL_MS = 3000;
  var live = document.getElementById("live");
  var polling = null;

  function setLive(text, cls) {
    if (live) { live.textContent = text; live.className = "live " + cls; }
  }

  function refreshFragments() {
    document.querySelectorAll("[data-fragment]").forEach(function (el) {
      if (el.contains(document.activeElement) && document.activeElement !== document.body) { return; }
      fetch(el.getAttribute("data-fragment"), { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { if (r.status === 401) { location.href = "/dashboard/login"; } return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null && el.innerHTML !== html) { el.innerHTML = html; } })
        .catch(function () {});
    });
  }

  function tick() {
    refreshFragments();
    drawCharts();
  }

  function startPolling() {
    if (polling === null) {
      setLive("polling", "poll");
      polling = setInterval(tick, POLL_MS);
    }
  }

  function connect() {
    if (!window.EventSource) { startPolling(); return; }
    var source = new EventSource("/dashboard/api/live");
    var first = true;
    source.addEventListener("overview", function () {
      if (polling !== null) { clearInterval(polling); polling = null; }
      setLive("live", "on");
      if (first) { first = false; return; }  // the page was rendered a moment ago
      tick();
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) { startPolling(); } else { setLive("reconnecting…", "poll"); }
    };
  }

  // -- charts (uPlot) ------------------------------------------------------------------------------------------------
  // Each [data-chart] element names a spec below and the JSON it is drawn from ([data-src]). Once drawn, the element
  // carries data-points (x values plotted) and data-series (lines), so a reader (or a test) can tell a drawn chart
  // from an empty one.
  var charts = {};
  var PALETTE = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#f39c12"];
  var RATE_AXES = [{}, { scale: "rate", label: "rate" }, { scale: "ms", side: 1, label: "ms", grid: { show: false } }];

  function lines(names, scale, dash) {
    return names.map(function (name, i) {
      return { label: name, stroke: PALETTE[i % PALETTE.length], scale: scale, dash: dash, spanGaps: true };
    });
  }

  var SPECS = {
    tasks: function (data) {
      var s = data.series;
      return {
        series: [{}, { label: "tasks", stroke: "#2980b9", scale: "n" },
                 { label: "error rate", stroke: "#c0392b", scale: "rate" },
                 { label: "p50 ms", stroke: "#27ae60", scale: "ms" }, { label: "p95 ms", stroke: "#8e44ad", scale: "ms" }],
        axes: [{}, { scale: "n", label: "tasks" }, { scale: "ms", side: 1, label: "ms", grid: { show: false } }],
        scales: { rate: { range: [0, 1] } },
        data: [s.t, s.tasks, s.error_rate, s.p50_ms, s.p95_ms],
      };
    },
    experts: function (data) {
      var names = Object.keys(data.experts);
      return {
        series: [{}].concat(lines(names, "ms")),
        axes: [{}, { scale: "ms", label: "p50 ms" }],
        data: [data.t].concat(names.map(function (n) { return data.experts[n]; })),
      };
    },
    llm: function (data) {
      var names = Object.keys(data.llm);
      return {
        series: [{}].concat(lines(names.map(function (n) { return n + " TTFT p50 ms"; }), "ms"),
                            lines(names.map(function (n) { return n + " tokens/s"; }), "tps", [6, 4])),
        axes: [{}, { scale: "ms", label: "ms" }, { scale: "tps", side: 1, label: "tokens/s", grid: { show: false } }],
        data: [data.t].concat(names.map(function (n) { return data.llm[n].ttft_p50_ms; }),
                              names.map(function (n) { return data.llm[n].tokens_per_second; })),
      };
    },
    routing: function (data) {
      var s = data.series;
      renderRoutingSummary(data.summary);
      return {
        series: [{}, { label: "fallback rate", stroke: "#c0392b", scale: "rate" },
                 { label: "out-of-scope rate", stroke: "#d35400", dash: [6, 4], scale: "rate" },
                 { label: "cache hit rate", stroke: "#2980b9", scale: "rate" },
                 { label: "p50 routing ms", stroke: "#27ae60", scale: "ms" }],
        axes: RATE_AXES,
        scales: { rate: { range: [0, 1] } },
        data: [s.t, s.fallback_rate, s.out_of_scope_rate, s.cache_hit_rate, s.p50_ms],
      };
    },
    resources: function (data) {
      var s = data.series;
      return {
        series: [{}, { label: "CPU %", stroke: "#c0392b" }, { label: "memory %", stroke: "#2980b9" },
                 { label: "disk %", stroke: "#8e44ad" }],
        scales: { y: { range: [0, 100] } },
        data: [s.t, s.cpu_percent, s.memory_percent, s.disk_percent],
      };
    },
  };

  // One sample time (a quiet window) is an empty span, which uPlot widens to 1,000 days before it asks this function
  // (so min and max arrive apart): show five minutes around that time instead, read from the data itself.
  function timeRange(u, min, max) {
    var times = u.data && u.data[0];
    if (times && times.length && times[0] === times[times.length - 1]) { return [times[0] - 300, times[0] + 300]; }
    return [min, max];
  }

  // A chart is as wide as its box's content, and follows it when the box changes width (a window resized, a phone
  // rotated): uPlot draws at the size it is given, so a chart sized once overflowed a narrower screen.
  var CHART_HEIGHT = 280;

  function plotWidth(el) {
    var style = getComputedStyle(el);
    var width = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return Math.max(Math.floor(width), 120);
  }

  function followWidth(el, kind) {
    if (el.hasAttribute("data-sized")) { return; }
    el.setAttribute("data-sized", "");
    function fit() {
      var chart = charts[kind], width = plotWidth(el);
      if (chart && chart.width !== width) { chart.setSize({ width: width, height: CHART_HEIGHT }); }
    }
    if (window.ResizeObserver) { new ResizeObserver(fit).observe(el); } else { window.addEventListener("resize", fit); }
  }

  function draw(el, kind, data) {
    var spec = SPECS[kind](data);
    if (spec.data[0].length === 0 || spec.series.length < 2) {
      if (charts[kind]) { charts[kind].destroy(); delete charts[kind]; }
      el.textContent = "No samples in this window yet.";
      el.setAttribute("data-points", "0");
      return;
    }
    if (!window.uPlot) { el.textContent = "Charts need the uPlot script."; return; }
    if (charts[kind] && charts[kind].series.length === spec.series.length) {
      charts[kind].setData(spec.data);
    } else {
      if (charts[kind]) { charts[kind].destroy(); }
      el.textContent = "";
      charts[kind] = new window.uPlot({ width: plotWidth(el), height: CHART_HEIGHT,
        series: spec.series, axes: spec.axes, scales: Object.assign({ x: { time: true, range: timeRange } }, spec.scales) },
        spec.data, el);
      followWidth(el, kind);
    }
    el.uplot = charts[kind];  // what the browser tests read the axes from
    el.setAttribute("data-points", String(spec.data[0].length));
    el.setAttribute("data-series", String(spec.series.length - 1));
  }

  function drawCharts() {
    var fetched = {};  // one request per source per tick, however many charts it feeds
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var src = el.getAttribute("data-src");
      if (!fetched[src]) {
        fetched[src] = fetch(src, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; });
      }
      fetched[src].then(function (data) { if (data !== null) { draw(el, el.getAttribute("data-chart"), data); } })
        .catch(function () {});
    });
  }

  function renderRoutingSummary(summary) {
    var box = document.getElementById("routing-summary");
    if (!box || !summary) { return; }
    function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
    function ms(v) { return v === null || v === undefined ? "—" : v.toFixed(1) + " ms"; }
    var cards = [["Decisions", String(summary.decisions)], ["Fallback rate", pct(summary.fallback_rate)],
                 ["Out-of-scope rate", pct(summary.out_of_scope_rate)], ["Cache hit rate", pct(summary.cache_hit_rate)], ["Routing p50", ms(summary.latency_p50_ms)],
                 ["Routing p95", ms(summary.latency_p95_ms)]];
    box.textContent = "";
    cards.forEach(function (c) {
      var d = document.createElement("div"); d.className = "card";
      var s = document.createElement("span"); s.textContent = c[0];
      var b = document.createElement("b"); b.textContent = c[1];
      d.appendChild(s); d.appendChild(b); box.appendChild(d);
    });
    var hist = document.getElementById("confidence");
    if (hist) {
      var max = Math.max.apply(null, summary.confidence_histogram.map(function (h) { return h.count; }).concat([1]));
      hist.textContent = "";
      summary.confidence_histogram.forEach(function (h) {
        var row = document.createElement("div"); row.className = "hrow";
        var label = document.createElement("span"); label.textContent = h.from.toFixed(1) + "–" + h.to.toFixed(1);
        var bar = document.createElement("span"); bar.className = "bar"; bar.style.width = (100 * h.count / max) + "%";
        var n = document.createElement("small"); n.textContent = String(h.count);
        row.appendChild(label); row.appendChild(bar); row.appendChild(n); hist.appendChild(row);
      });
    }
    var list = document.getElementById("strategies");
    if (list) {
      list.textContent = "";
      Object.keys(summary.strategies).forEach(function (name) {
        var li = document.createElement("li"); li.textContent = name + ": " + summary.strategies[name];
        list.appendChild(li);
      });
    }
  }

  // -- a task's page: its own feed while it runs ---------------------------------------------------------------------
  function followTask() {
    var state = document.querySelector("[data-task-live]");
    if (!state || state.getAttribute("data-finished") === "yes") { return; }
    var id = state.getAttribute("data-task-live");
    var output = document.getElementById("output");
    function pollTask() {
      var timer = setInterval(function () {
        fetch("/dashboard/api/tasks/" + encodeURIComponent(id), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (d) {
            if (d === null) { return; }
            state.textContent = d.task.state;
            if (["queued", "running"].indexOf(d.task.state) < 0) { clearInterval(timer); location.reload(); }
          }).catch(function () {});
      }, 1000);
    }
    if (!window.EventSource) { pollTask(); return; }
    var feed = new EventSource("/dashboard/tasks/" + encodeURIComponent(id) + "/events");
    var done = false;
    feed.addEventListener("state", function (e) { state.textContent = JSON.parse(e.data).state; });
    feed.addEventListener("token", function (e) { output.textContent += JSON.parse(e.data).text; });
    feed.addEventListener("result", function () { done = true; feed.close(); location.reload(); });
    feed.onerror = function () { if (!done) { feed.close(); pollTask(); } };
  }

  connect();
  drawCharts();
  followTask();
})();
