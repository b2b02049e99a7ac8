"""MkDocs hook: serve the benchmark figures from where the benchmarks write them.

The figures live in `benchmarks/results/` (the scripts regenerate them there), outside
`docs/`; each PNG is added to the site as `figures/NAME.png`, so pages link to
`figures/...` and a figure is never copied by hand, nor left stale.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

FIGURES = "benchmarks/results"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    for png in sorted((root / FIGURES).glob("*.png")):
        files.append(File.generated(config, f"figures/{png.name}", abs_src_path=str(png)))
    return files
