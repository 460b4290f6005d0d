"""`llc promote-readme-images`: copy chosen figures into `assets/` and rewrite the README gallery.

Sources:
- run figures: RUN_DIR/analysis/<plot>.png as drawn by `llc analyze RUN_DIR` (default --out);
  the caption names the run (run id, sampler, preset or problem summary from config.json,
  λ̂ ± SE from metrics.json);
- sweep figures: PNGs written by `llc plot-sweep`; the caption is the description that
  plot-sweep stores in the PNG (metric, size column, samplers, filters), else the file name.

Assets get stable names, `<run_id>_<plot>.png` and `sweep_<file stem>.png`, so promoting the
same figure again overwrites the same file. The README section between
`<!-- gallery:start -->` and `<!-- gallery:end -->` is replaced (appended at the end of the
README when the markers are missing). A file is written only when its bytes change (assets are
compared by SHA-256 before copying), so running the command twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llc.errors import ConfigError
from llc.paths import check_output_file, check_writable_dir
from llc.records import Metrics
from llc.runs import layout

START = "<!-- gallery:start -->"
END = "<!-- gallery:end -->"
DEFAULT_PLOTS = ("running_llc", "rank")
ANALYSIS_DIR = layout.PLOTS_DIR
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_LIMIT = 400  # characters of one caption, heading or summary pasted into the README

TITLES = {
    "running_llc": "Running λ̂ per chain and pooled, ±1 SE band",
    "rank": "Rank plot of λ̂ and the θ projections",
    "ess_evolution": "Bulk and tail ESS of λ̂ against the number of draws",
    "autocorr": "Autocorrelation of the λ̂ draws",
    "energy": "HMC energy distributions and BFMI",
    "theta": "Random projections of w − w* against draw",
    "acceptance": "Acceptance-rate histogram",
    "energy_change": "MCLMC energy-change histogram",
}


@dataclass
class GalleryItem:
    source: Path
    asset_name: str
    alt: str
    caption: str


@dataclass
class GallerySection:
    heading: str
    summary: str
    items: list[GalleryItem] = field(default_factory=list)


@dataclass
class PromoteReport:
    assets: dict[Path, str] = field(default_factory=dict)  # path -> "copied" | "unchanged"
    readme: Path | None = None
    readme_status: str = ""  # "updated" | "created section" | "unchanged"

    def lines(self) -> list[str]:
        out = [f"{status:9s} {path}" for path, status in self.assets.items()]
        if self.readme is not None:
            out.append(f"{self.readme_status:9s} {self.readme}")
        return out

    @property
    def changed(self) -> bool:
        return any(s == "copied" for s in self.assets.values()) or self.readme_status != "unchanged"


# --------------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------------


def detect_preset(config: dict[str, Any]) -> str | None:
    """The preset whose resolved configuration (with this seed and sampler) equals `config`."""
    try:
        from llc.config import config_to_dict, resolve_config
        from llc.config.presets import PRESETS
    except ImportError:  # pragma: no cover
        return None
    sampler = (config.get("sampler") or {}).get("name")
    for name in PRESETS:
        try:
            cfg = resolve_config(preset=name, overrides=[f"seed={config.get('seed', 0)}",
                                                         f"precision={config.get('precision', 'float64')}"],
                                 sampler=sampler)
        except Exception:  # noqa: BLE001 - any failure just means "not this preset"
            continue
        if json.loads(json.dumps(config_to_dict(cfg))) == config:
            return name
    return None


def problem_summary(config: dict[str, Any], metrics: Metrics) -> str:
    """'mlp 4→[8, 8]→1 (relu), 121 parameters, n = 5000, gauss_iso inputs, seed 0'."""
    t, d = config.get("target") or {}, config.get("data") or {}
    kind = t.get("kind", "?")
    if kind == "quadratic":
        arch = f"quadratic, d = {t.get('dim')}, curvature ratio {t.get('curvature_ratio'):g}"
    elif kind == "custom":  # the entry's file (or module) and function, never its folder
        where, _, fn = str(t.get("entry") or "?").rpartition(":")
        arch = f"custom {where.replace(chr(92), '/').rpartition('/')[2]}:{fn}, {(config.get('posterior') or {}).get('loss')} loss"
    else:
        hidden = t.get("hidden")
        if hidden is None and t.get("depth") is not None:
            hidden = f"{t.get('depth')} hidden layers"
        arch = f"{kind} {t.get('in_dim')}→{hidden}→{t.get('out_dim')}"
        if kind == "mlp":
            arch += f" ({t.get('activation')})"
        if kind == "dln" and t.get("rank") is not None:
            arch += f", teacher rank {t.get('rank')}"
    parts = [arch]
    if metrics.n_params is not None:
        parts.append(f"{metrics.n_params} parameters")
    parts.append(f"n = {d.get('n')}")
    if d.get("x_dist") and d.get("x_dist") != "gauss_iso":
        parts.append(f"{d['x_dist']} inputs")
    if d.get("noise") and d.get("noise") != "gauss":
        parts.append(f"{d['noise']} noise")
    parts.append(f"seed {config.get('seed')}")
    if config.get("precision") and config.get("precision") != "float64":
        parts.append(str(config["precision"]))
    return ", ".join(parts)


def sampler_summary(config: dict[str, Any]) -> str:
    s = config.get("sampler") or {}
    text = f"{s.get('chains')} chains × {s.get('steps')} steps after {s.get('warmup')} warm-up"
    if s.get("thinning", 1) not in (1, None):
        text += f", thinning {s['thinning']}"
    if s.get("step_size") is not None:
        text += f", step size {s['step_size']:g}"
    if s.get("batch_size") is not None:
        text += f", batch {s['batch_size']}"
    return text


def run_summary(run_dir: Path) -> tuple[str, str, str]:
    """(heading, summary paragraph, short label) for the gallery block of one run."""
    config = layout.read_config(run_dir)
    metrics = layout.read_metrics(run_dir)
    rid = metrics.run_id or run_dir.name
    sampler = metrics.sampler or (config.get("sampler") or {}).get("name")
    preset = detect_preset(config)
    where = f"`{preset}` preset" if preset else "custom configuration"
    result = _result_summary(metrics)
    heading = f"Run `{rid}` — {sampler}, {where}"
    caption = (f"Problem: {problem_summary(config, metrics)}. Sampler: {sampler} ({sampler_summary(config)}). "
               + ("Result: " + ", ".join(result) + "." if result else ""))
    label = f"{sampler} run {rid}, {where}" if preset else f"{sampler} run {rid}, {problem_summary(config, metrics)}"
    return heading, caption.strip(), label


def _result_summary(metrics: Metrics) -> list[str]:
    """['λ̂ = 6.1 ± 0.71 (λ true 6.5)', 'R̂ 1.006', 'bulk ESS 1406', 'converged'], leaving out what is missing."""
    est, result = metrics.estimate, []
    if isinstance(est.llc_mean, int | float):
        text = f"λ̂ = {est.llc_mean:.4g}"
        if isinstance(est.llc_se, int | float):
            text += f" ± {est.llc_se:.2g}"
        if isinstance(metrics.lambda_true, int | float):
            text += f" (λ true {metrics.lambda_true:.4g})"
        result.append(text)
    if isinstance(est.rhat, int | float):
        result.append(f"R̂ {est.rhat:.3f}")
    if isinstance(est.ess_bulk, int | float):
        result.append(f"bulk ESS {est.ess_bulk:.0f}")
    if "converged" not in est.absent:
        result.append("converged" if est.converged else "not converged")
    return result


def png_description(path: Path) -> str:
    """The Description text chunk of a PNG (written by `llc plot-sweep`), or ''."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        return ""
    try:
        with Image.open(path) as img:
            return str(getattr(img, "text", {}).get("Description", "") or "")
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# Building the gallery
# --------------------------------------------------------------------------------------------


def run_section(run_dir: str | Path, plots: Sequence[str] = DEFAULT_PLOTS) -> GallerySection:
    run_dir = Path(run_dir)
    reason = layout.incomplete_reason(run_dir)
    if reason is not None:
        raise ConfigError(f"--run-dir {run_dir}: not a complete run directory ({reason})")
    figures = run_dir / ANALYSIS_DIR
    heading, summary, label = run_summary(run_dir)
    rid = _checked_run_id(run_dir, layout.read_metrics(run_dir).run_id)
    present = sorted(p.stem for p in figures.glob("*.png")) if figures.is_dir() else []
    section = GallerySection(heading, summary)
    for plot in plots:
        src = figures / f"{plot}.png"
        if not src.is_file():
            have = f"figures present: {', '.join(present)}" if present else "no figures drawn yet"
            raise ConfigError(
                f"--run-dir {run_dir}: no {plot}.png in {figures} ({have}); draw it with `llc analyze {run_dir}`"
            )
        title = TITLES.get(plot, plot)
        section.items.append(GalleryItem(src, f"{rid}_{plot}.png", f"{title} — {rid}", f"{title} — {label}."))
    return section


def _checked_run_id(run_dir: Path, rid: object) -> str:
    """The run id of metrics.json, which names the asset files: a run id only (no `../x`)."""
    if not isinstance(rid, str) or not layout.RUN_ID_RE.match(rid):
        raise ConfigError(f"--run-dir {run_dir}: metrics.json's run_id {str(rid)[:80]!r} is not a run id "
                          "(<sampler>-<16 hex digits>)")
    return rid


def check_png(src: Path) -> None:
    """ConfigError unless `src` is a file that starts with the PNG signature."""
    if src.is_dir():
        raise ConfigError(f"--sweep {src} is a directory; give the PNG written by `llc plot-sweep`")
    if not src.is_file():
        raise ConfigError(f"--sweep: {src} not found; draw it with `llc plot-sweep --out {src}`")
    try:
        with src.open("rb") as fh:
            head = fh.read(len(PNG_SIGNATURE))
    except OSError as exc:
        raise ConfigError(f"--sweep {src}: cannot read ({exc.strerror})") from None
    if head != PNG_SIGNATURE:
        raise ConfigError(f"--sweep {src} is not a PNG file; give the PNG written by `llc plot-sweep`")


def clean_text(text: str, limit: int = TEXT_LIMIT) -> str:
    """Text from a file made safe to paste into one Markdown line of the gallery.

    Newlines and other control characters become spaces (so no heading or list can start), `<`, `>`
    and `&` become HTML entities (no HTML, no comment, so no gallery marker), leading `#` are
    dropped, and the result is cut to `limit` characters.
    """
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").lstrip("#").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sweep_section(pngs: Sequence[str | Path]) -> GallerySection:
    section = GallerySection("Sweeps", "")
    for raw in pngs:
        src = Path(raw)
        check_png(src)
        description = png_description(src) or src.stem.replace("_", " ")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", src.stem)
        if not name.startswith("sweep"):
            name = f"sweep_{name}"
        section.items.append(GalleryItem(src, f"{name}.png", description, description.rstrip(".") + "."))
    return section


def render_gallery(sections: Sequence[GallerySection], readme_dir: Path, assets_dir: Path) -> str:
    lines = [START, "## Gallery", "",
             "_Generated by `llc promote-readme-images`: edits between the gallery markers are overwritten._", ""]
    for section in sections:
        lines += [f"### {clean_text(section.heading)}", ""]
        if section.summary:
            lines += [clean_text(section.summary, 4 * TEXT_LIMIT), ""]
        for item in section.items:
            rel = Path(os.path.relpath(assets_dir / item.asset_name, readme_dir)).as_posix()
            lines += [f"![{_md_escape(item.alt)}]({rel})", "", f"*{_md_escape(item.caption)}*", ""]
    lines.append(END)
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    text = clean_text(text).replace("\\", "\\\\")
    return text.replace("[", "\\[").replace("]", "\\]").replace("*", "\\*")


def splice_readme(text: str, gallery: str) -> str:
    """Replace the marked section (markers included) or append it at the end."""
    start, end = text.find(START), text.find(END)
    if start == -1 and end == -1:
        body = text.rstrip("\n")
        return (body + "\n\n" if body else "") + gallery + "\n"
    if start == -1 or end == -1 or end < start or text.count(START) > 1 or text.count(END) > 1:
        raise ConfigError(
            f"README: the gallery markers are unbalanced; expect exactly one {START} followed by one {END}"
        )
    return text[:start] + gallery + text[end + len(END):]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_if_changed(src: Path, dst: Path) -> bool:
    """Copy src over dst (atomically) unless both already have the same SHA-256."""
    if dst.is_file() and sha256(dst) == sha256(src):
        return False
    layout.copy_atomic(src, dst)
    return True


def write_if_changed(path: Path, text: str) -> bool:
    """Write UTF-8 text atomically unless the file already holds exactly these bytes; an existing
    file keeps its permission bits."""
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return False
    mode = path.stat().st_mode & 0o7777 if path.is_file() else None
    layout.write_bytes_atomic(path, data, mode=mode)
    return True


def read_readme(readme: Path) -> str:
    """The README's text ('' when it does not exist yet); ConfigError for anything but a UTF-8 file."""
    if readme.exists() and not readme.is_file():
        raise ConfigError(f"--readme {readme}: not a file")
    if not readme.exists():
        return ""
    try:
        return readme.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--readme {readme}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}); nothing was written") from None
    except OSError as exc:
        raise ConfigError(f"--readme {readme}: cannot read ({exc.strerror})") from None


def promote(
    run_dirs: Sequence[str | Path] = (),
    plots: Sequence[str] = DEFAULT_PLOTS,
    sweeps: Sequence[str | Path] = (),
    readme: str | Path = "README.md",
    assets: str | Path | None = None,
) -> PromoteReport:
    """Copy the figures into `assets` (default: assets/ next to the README) and rewrite the gallery.

    Everything is read and checked first (runs, PNGs, the README and its markers, where the files
    go); only then is anything written, so bad input leaves every file as it was.
    """
    if not run_dirs and not sweeps:
        raise ConfigError("nothing to promote: give --run-dir RUN_DIR (figures from `llc analyze`) and/or --sweep PNG")
    readme = Path(readme)
    assets_dir = Path(assets) if assets is not None else readme.parent / "assets"
    old = read_readme(readme)
    sections = [run_section(d, plots) for d in dict.fromkeys(Path(d) for d in run_dirs)]
    if sweeps:
        sections.append(sweep_section(list(dict.fromkeys(Path(s) for s in sweeps))))
    _check_asset_names(sections, assets_dir)
    new = splice_readme(old, render_gallery(sections, readme.parent, assets_dir))
    check_writable_dir(assets_dir, "--assets")
    check_output_file(readme, "--readme")

    report = PromoteReport()
    for section in sections:
        for item in section.items:
            dst = assets_dir / item.asset_name
            report.assets[dst] = "copied" if copy_if_changed(item.source, dst) else "unchanged"
    report.readme = readme
    if write_if_changed(readme, new):
        report.readme_status = "updated" if START in old else "created section"
    else:
        report.readme_status = "unchanged"
    return report


def _check_asset_names(sections: Sequence[GallerySection], assets_dir: Path) -> None:
    """Every asset lands directly in `assets_dir`, and no two figures share a name."""
    names: dict[str, Path] = {}
    for item in (i for s in sections for i in s.items):
        if Path(item.asset_name).name != item.asset_name or item.asset_name in (".", ".."):
            raise ConfigError(f"{item.source}: asset name {item.asset_name!r} would leave {assets_dir}")
        other = names.setdefault(item.asset_name, item.source)
        if other.resolve() != item.source.resolve():
            raise ConfigError(f"two figures would both become {assets_dir / item.asset_name}: {other} and {item.source}")
