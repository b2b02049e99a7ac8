// MathJax reads the \( \) and \[ \] spans that pymdownx.arithmatex (generic) leaves.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
};
document$.subscribe(() => {  // Material's instant navigation: typeset each new page
  MathJax.typesetPromise();
});
