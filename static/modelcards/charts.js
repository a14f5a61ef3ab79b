// Evaluation metrics of a model card, drawn with plotly from the json_script data
// #metric-charts-data: bar for numbers and bar charts, line for linear graphs, heatmap for
// matrices. Plain SVG traces only (no WebGL). Also wires the Print button.
(function () {
  "use strict";

  var printButton = document.querySelector("[data-print]");
  if (printButton) {
    printButton.addEventListener("click", function () { window.print(); });
  }

  // Labels are what card writers typed (metric, axis and evaluation names), and plotly reads
  // its own markup in labels (<b>, <a href>, <br>): escaped, it shows them as the text they are
  // (plotly turns the entities back into characters) and never builds elements from them.
  function asText(value) {
    if (typeof value === "string") {
      return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    }
    return Array.isArray(value) ? value.map(asText) : value;
  }

  var source = document.getElementById("metric-charts-data");
  if (!source || typeof Plotly === "undefined") {
    return;
  }
  var charts = JSON.parse(source.textContent);
  charts.forEach(function (chart) {
    ["title", "x_title", "y_title", "x", "y"].forEach(function (key) {
      chart[key] = asText(chart[key]);
    });
  });
  var font = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 13, color: "#1b2430" };

  charts.forEach(function (chart) {
    var element = document.getElementById(chart.id);
    if (!element) {
      return;
    }
    var trace;
    if (chart.kind === "heatmap") {
      // Under the CSP (no style attributes), two plotly paths are out: the colour bar (filled
      // through a style attribute) and the gapless "fast" image (image-rendering style). So
      // the cells get a small gap and carry their numbers instead of a colour bar.
      trace = {
        type: "heatmap", z: chart.z, x: chart.x, y: chart.y, colorscale: [[0, "#eef3ff"], [1, "#1f4fd1"]],
        showscale: false, xgap: 2, ygap: 2, hoverongaps: false, texttemplate: "%{z}"
      };
    } else if (chart.kind === "line") {
      trace = { type: "scatter", mode: "lines+markers", x: chart.x, y: chart.y, line: { color: "#1f4fd1", width: 2 } };
    } else {
      trace = {
        type: "bar", x: chart.x, y: chart.y, marker: { color: "#1f4fd1" },
        text: chart.y.map(function (value) { return String(value); }), textposition: "auto"
      };
    }
    var layout = {
      font: font,
      margin: { l: 56, r: 16, t: 12, b: 48 },
      height: chart.kind === "heatmap" ? 320 : 260,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      xaxis: { title: { text: chart.x_title || "" }, automargin: true, gridcolor: "#eef1f6" },
      yaxis: { title: { text: chart.y_title || "" }, automargin: true, gridcolor: "#eef1f6" }
    };
    if (chart.kind === "heatmap") {
      layout.yaxis.autorange = "reversed";  // the first row on top, as a confusion matrix reads
    }
    Plotly.newPlot(element, [trace], layout, { displayModeBar: false, responsive: true });
  });
})();
