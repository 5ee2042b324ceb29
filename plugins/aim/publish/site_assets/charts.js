/* AIM scorecard: trend charts drawn as SVG from the data embedded in the page.
 * Plain JavaScript, no libraries, nothing fetched. The page is complete without it: each
 * measure's figure holds a server-rendered sparkline, which this replaces with a larger chart
 * (axes, value line, dashed target line, a readout that follows the pointer or the arrow keys).
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
    var value = point.value_text === null ? "no value" : point.value_text;
    var target = point.target_text === null ? "no target" : "target " + point.target_text;
    return point.label + ": " + value + " (" + target + ")";
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

    function path(key, step) {
      var d = "", pen = false;
      points.forEach(function (p, i) {
        if (p[key] === null) { pen = false; return; }
        if (!pen) d += "M" + r1(x(i)) + "," + r1(y(p[key]));
        else if (step) d += "H" + r1(x(i)) + "V" + r1(y(p[key]));
        else d += "L" + r1(x(i)) + "," + r1(y(p[key]));
        pen = true;
      });
      return d;
    }
    var targetD = path("target", true), valueD = path("value", false);
    if (targetD) el("path", { "class": "target-line", d: targetD }, svg);
    if (valueD) el("path", { "class": "value-line", d: valueD }, svg);

    var last = -1;
    points.forEach(function (p, i) { if (p.value !== null) last = i; });
    points.forEach(function (p, i) {
      if (p.value === null) return;
      var latest = i === last;
      var dot = el("circle", {
        "class": latest ? "point latest " + measure.status_class : "point",
        cx: r1(x(i)), cy: r1(y(p.value)), r: latest ? 4 : 2.5
      }, svg);
      el("title", {}, dot).textContent = pointText(p);
    });
    if (!valueD && !targetD) {
      el("text", { "class": "empty-note", x: M.left + plotW / 2, y: M.top + plotH / 2, "text-anchor": "middle" }, svg)
        .textContent = "No values yet";
    }

    // Readout: follows the pointer, or the arrow keys when the chart has focus.
    var cursor = el("line", { "class": "cursor", y1: M.top, y2: M.top + plotH, visibility: "hidden" }, svg);
    var cursorDot = el("circle", { "class": "cursor-dot", r: 3, visibility: "hidden" }, svg);
    var readout = html("p", "readout");
    readout.setAttribute("aria-live", "polite");
    var rest = last >= 0 ? "Latest: " + pointText(points[last]) : "No values yet";
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

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
