/* Insights charts: draws every [data-figure] element from the figure JSON the server put in
   that attribute (escaped by Django; never built from strings here), on load and after each
   htmx swap. Not json_script: htmx drops <script> elements from swapped fragments. */
(function () {
  "use strict";

  var CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]
  };

  // Trace names and categories come from captured traffic (variant names, content types,
  // target models), and plotly reads its own markup in labels (<b>, <a href>, <br>): escaped,
  // they show as the text they are (plotly turns the entities back into characters) and never
  // become elements. Layout titles are the portal's own words and stay as they are.
  var TEXT_KEYS = ["name", "x", "y", "text", "labels", "hovertext"];

  function asText(value) {
    if (typeof value === "string") {
      return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    }
    return Array.isArray(value) ? value.map(asText) : value;
  }

  function draw(root) {
    if (!window.Plotly) {
      return;
    }
    root.querySelectorAll("[data-figure]").forEach(function (element) {
      if (element.dataset.drawn) {
        return;
      }
      var figure = JSON.parse(element.dataset.figure);
      (figure.data || []).forEach(function (trace) {
        TEXT_KEYS.forEach(function (key) {
          if (key in trace) {
            trace[key] = asText(trace[key]);
          }
        });
      });
      element.dataset.drawn = "true";
      window.Plotly.newPlot(element, figure.data, figure.layout, CONFIG);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    draw(event.detail && event.detail.elt ? event.detail.elt.ownerDocument : document);
  });
})();
