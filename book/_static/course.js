// The course website's additions to sphinx-book-theme.

// The navigation sidebar opens a chapter's sections with a <summary> that holds only an icon: give it a name
// that screen readers can announce (axe-core rule "summary-name").
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".bd-sidenav details > summary").forEach(function (summary) {
    if (summary.getAttribute("aria-label")) return;
    var link = summary.parentElement.parentElement.querySelector(":scope > a");
    summary.setAttribute("aria-label", "Sections of " + (link ? link.textContent.trim() : "this chapter"));
  });
});
