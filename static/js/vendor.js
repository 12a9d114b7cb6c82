// d3 and KaTeX are vendored UMD builds loaded as classic deferred scripts before the module graph
// runs (see templates/index.html); this is the one place that reaches for the globals.
export const d3 = window.d3;
export const katex = window.katex;
