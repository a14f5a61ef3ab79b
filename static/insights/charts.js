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

  function draw(root) {
    if (!window.Plotly) {
      return;
    }
    root.querySelectorAll("[data-figure]").forEach(function (element) {
      if (element.dataset.drawn) {
        return;
      }
      var figure = JSON.parse(element.dataset.figure);
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
