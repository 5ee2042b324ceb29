/* AIM scorecard: trend charts drawn as SVG from the data embedded in the page.
 * Plain JavaScript, no libraries, nothing fetched. The page is complete without it: each
 * measure's figure holds a server-rendered sparkline, which this replaces with a larger chart
 * (axes, value line, dashed target line, a readout that follows the pointer or the arrow keys).
 * Completeness is drawn, never hidden: a month without source data is a shaded gap (the line
 * stops there, nothing is interpolated), a provisional month has an open marker and the steps
 * to it are dashed; the readout says "provisional" or "no data" in words.
 * Text goes in with textContent only: names come from a hand-edited workbook. */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var W = 320, H = 150;
  var M = { top: 10, right: 12, bottom: 24, left: 46 };

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var key in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, String(attrs[key]));
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(name, className, text, parent) {
    var node = document.createElement(name);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function grouped(text) {
    // Thousands separators without depending on the reader's locale.
    var parts = text.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }

  function tickText(value, decimals, unit) {
    var text = grouped(Math.abs(value) < 1e-9 ? (0).toFixed(decimals) : value.toFixed(decimals));
    return unit === "percent" ? text + "%" : text;
  }

  function niceTicks(low, high, count) {
    if (!(high > low)) { low -= 1; high += 1; }
    var raw = (high - low) / count;
    var power = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var steps = [1, 2, 2.5, 5, 10], step = power * 10;
    for (var i = 0; i < steps.length; i++) {
      if (raw <= steps[i] * power) { step = steps[i] * power; break; }
    }
    var start = Math.floor(low / step) * step, end = Math.ceil(high / step) * step;
    var ticks = [];
    for (var v = start; v <= end + step / 2; v += step) ticks.push(v);
    var decimals = Math.max(0, -Math.floor(Math.log(step) / Math.LN10 + 1e-9));
    if (step * Math.pow(10, decimals) % 1 > 1e-6) decimals += 1;  // 2.5, 0.25 ...
    return { ticks: ticks, low: start, high: end, decimals: decimals };
  }

  function pointText(point) {
    var value = point.value_text === null ? (point.completeness === "no data" ? "no data" : "no value")
                                          : point.value_text;
    if (point.completeness === "provisional") value += ", " + (point.note || "provisional");
    var target = point.target_text === null ? "no target" : "target " + point.target_text;
    return point.label + ": " + value + " (" + target + ")";
  }

  // Runs of consecutive months that both have a value: [kind, first, last]; a step touching a
  // provisional month is "provisional". A month without a value breaks the line.
  function segments(points) {
    var runs = [];
    for (var i = 0; i + 1 < points.length; i++) {
      var a = points[i], b = points[i + 1];
      if (a.value === null || b.value === null) continue;
      var kind = (a.completeness === "provisional" || b.completeness === "provisional") ? "provisional" : "complete";
      var last = runs[runs.length - 1];
      if (last && last[0] === kind && last[2] === i) last[2] = i + 1;
      else runs.push([kind, i, i + 1]);
    }
    return runs;
  }

  function draw(figure, measure) {
    var points = measure.points || [];
    if (!points.length) return false;
    var numbers = [];
    points.forEach(function (p) {
      if (p.value !== null) numbers.push(p.value);
      if (p.target !== null) numbers.push(p.target);
    });
    var scale = niceTicks(numbers.length ? Math.min.apply(null, numbers) : 0,
                          numbers.length ? Math.max.apply(null, numbers) : 1, 4);
    var plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
    var n = points.length;
    function x(i) { return M.left + (n > 1 ? i * plotW / (n - 1) : plotW / 2); }
    function y(v) { return M.top + plotH - (v - scale.low) / (scale.high - scale.low) * plotH; }
    function r1(v) { return Math.round(v * 10) / 10; }

    var caption = figure.querySelector("figcaption");
    var label = caption ? caption.textContent : measure.name;
    var svg = el("svg", {
      "class": "trend-chart", viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": label, tabindex: "0", "data-rendered": "js"
    });
    el("title", {}, svg).textContent = measure.name + ": " + label;

    var grid = el("g", { "aria-hidden": "true" }, svg);
    scale.ticks.forEach(function (t) {
      el("line", { "class": "grid", x1: M.left, x2: W - M.right, y1: r1(y(t)), y2: r1(y(t)) }, grid);
      el("text", { "class": "axis-label", x: M.left - 6, y: r1(y(t)) + 3.5, "text-anchor": "end" }, grid)
        .textContent = tickText(t, scale.decimals, measure.unit);
    });
    var labelled = n > 2 ? [0, Math.floor((n - 1) / 2), n - 1] : (n === 2 ? [0, 1] : [0]);
    labelled.forEach(function (i, k) {
      var anchor = n === 1 ? "middle" : (k === 0 ? "start" : (i === n - 1 ? "end" : "middle"));
      el("text", { "class": "axis-label", x: r1(x(i)), y: H - 6, "text-anchor": anchor }, grid)
        .textContent = points[i].label;
    });

    var band = n > 1 ? plotW / (n - 1) : plotW;
    var noData = false, provisional = false;
    points.forEach(function (p, i) {
      if (p.completeness === "provisional" && p.value !== null) provisional = true;
      if (p.completeness !== "no data") return;
      noData = true;
      var left = Math.max(M.left, x(i) - band / 2), right = Math.min(W - M.right, x(i) + band / 2);
      var rect = el("rect", {
        "class": "no-data-band", x: r1(left), y: M.top, width: r1(right - left), height: plotH,
        "data-period": p.period
      }, svg);
      el("title", {}, rect).textContent = pointText(p);
    });

    var targetD = "", pen = false;
    points.forEach(function (p, i) {
      if (p.target === null) { pen = false; return; }
      if (!pen) targetD += "M" + r1(x(i)) + "," + r1(y(p.target));
      else targetD += "H" + r1(x(i)) + "V" + r1(y(p.target));
      pen = true;
    });
    if (targetD) el("path", { "class": "target-line", d: targetD }, svg);
    var valueD = "";
    segments(points).forEach(function (run) {
      var d = "";
      for (var i = run[1]; i <= run[2]; i++) d += (i === run[1] ? "M" : "L") + r1(x(i)) + "," + r1(y(points[i].value));
      el("path", { "class": run[0] === "provisional" ? "value-line provisional" : "value-line", d: d }, svg);
      valueD += d;
    });

    var last = -1, shown = -1;
    points.forEach(function (p, i) {
      if (p.value !== null) last = i;
      if (p.value !== null && p.period === measure.period) shown = i;
    });
    points.forEach(function (p, i) {
      if (p.value === null) return;
      var latest = i === shown;
      var css = "point" + (p.completeness === "provisional" ? " provisional" : "");
      var dot = el("circle", {
        "class": latest ? css + " latest " + measure.status_class : css,
        cx: r1(x(i)), cy: r1(y(p.value)), r: latest ? 4 : 2.5, "data-period": p.period
      }, svg);
      el("title", {}, dot).textContent = pointText(p);
    });
    if (!valueD && !targetD && last < 0) {
      el("text", { "class": "empty-note", x: M.left + plotW / 2, y: M.top + plotH / 2, "text-anchor": "middle" }, svg)
        .textContent = noData ? "No data" : "No values yet";
    }

    // Readout: follows the pointer, or the arrow keys when the chart has focus.
    var cursor = el("line", { "class": "cursor", y1: M.top, y2: M.top + plotH, visibility: "hidden" }, svg);
    var cursorDot = el("circle", { "class": "cursor-dot", r: 3, visibility: "hidden" }, svg);
    var readout = html("p", "readout");
    readout.setAttribute("aria-live", "polite");
    var rest = "Latest: " + pointText(points[n - 1]);
    readout.textContent = rest;
    var current = -1;

    function show(i) {
      current = Math.max(0, Math.min(n - 1, i));
      var p = points[current];
      cursor.setAttribute("x1", r1(x(current)));
      cursor.setAttribute("x2", r1(x(current)));
      cursor.setAttribute("visibility", "visible");
      if (p.value !== null) {
        cursorDot.setAttribute("cx", r1(x(current)));
        cursorDot.setAttribute("cy", r1(y(p.value)));
        cursorDot.setAttribute("visibility", "visible");
      } else {
        cursorDot.setAttribute("visibility", "hidden");
      }
      readout.textContent = pointText(p);
    }
    function hide() {
      current = -1;
      cursor.setAttribute("visibility", "hidden");
      cursorDot.setAttribute("visibility", "hidden");
      readout.textContent = rest;
    }
    svg.addEventListener("pointermove", function (event) {
      var box = svg.getBoundingClientRect();
      if (!box.width) return;
      var sx = (event.clientX - box.left) * W / box.width;
      show(n > 1 ? Math.round((sx - M.left) / plotW * (n - 1)) : 0);
    });
    svg.addEventListener("pointerleave", hide);
    svg.addEventListener("blur", hide);
    svg.addEventListener("keydown", function (event) {
      var keys = { ArrowLeft: -1, ArrowRight: 1 };
      if (event.key in keys) {
        show((current < 0 ? (last >= 0 ? last : n - 1) : current) + keys[event.key]);
      } else if (event.key === "Home") {
        show(0);
      } else if (event.key === "End") {
        show(n - 1);
      } else if (event.key === "Escape") {
        hide();
        return;
      } else {
        return;
      }
      event.preventDefault();
    });

    var legend = html("ul", "chart-legend");
    legend.setAttribute("aria-hidden", "true");
    var valueKey = html("li", "", null, legend);
    html("span", "key", null, valueKey);
    valueKey.appendChild(document.createTextNode("Value"));
    if (targetD) {
      var targetKey = html("li", "", null, legend);
      html("span", "key target", null, targetKey);
      targetKey.appendChild(document.createTextNode("Target"));
    }
    if (provisional) {
      var provisionalKey = html("li", "", null, legend);
      html("span", "key provisional", null, provisionalKey);
      provisionalKey.appendChild(document.createTextNode("Provisional"));
    }
    if (noData) {
      var noDataKey = html("li", "", null, legend);
      html("span", "key no-data", null, noDataKey);
      noDataKey.appendChild(document.createTextNode("No data"));
    }

    var holder = figure.querySelector(".chart");
    while (holder.firstChild) holder.removeChild(holder.firstChild);
    holder.appendChild(svg);
    holder.appendChild(legend);
    holder.appendChild(readout);
    figure.setAttribute("data-enhanced", "true");
    return true;
  }

  function init() {
    var block = document.getElementById("aim-data");
    if (!block) return;
    var data = JSON.parse(block.textContent);
    var figures = document.querySelectorAll("figure.trend[data-index]");
    Array.prototype.forEach.call(figures, function (figure) {
      var measure = data.measures[Number(figure.getAttribute("data-index"))];
      if (!measure) return;
      try {
        draw(figure, measure);
      } catch (error) {
        console.error("AIM scorecard: could not draw the chart of " + measure.code, error);
      }
    });
    document.documentElement.setAttribute("data-charts", "ready");
  }

  // Printing: every <details> prints open, its tables included. The stylesheet does it with
  // ::details-content where the browser has it; for the others, open them for the print and close
  // them again afterwards, as the reader had them. (Without JavaScript, those print the summaries.)
  var openedForPrint = [];
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details:not([open])"), function (details) {
      details.open = true;
      openedForPrint.push(details);
    });
  });
  window.addEventListener("afterprint", function () {
    openedForPrint.forEach(function (details) { details.open = false; });
    openedForPrint = [];
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
