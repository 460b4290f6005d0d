"""`llc promote-readme-images` on hostile input: it checks everything before it writes anything.

The run directories are fakes that pass the completeness check (tests/conftest.py `write_fake_run`)
with a small real PNG as their figure; no sampler runs here.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from llc.analysis import promote as PR
from llc.errors import ConfigError
from tests.conftest import run_cli, write_fake_run

RUN_ID = "hmc-0123456789abcdef"
HOSTILE = ("line one\n\n# Heading injected\n<script>alert(1)</script> <img src=x onerror=y>\n"
           f"{PR.END}\n{PR.START}\n- list item ``` ` **bold** [link](http://x)\r\n" + "z" * 5000)


def _png(path: Path, description: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    if description is not None:
        info.add_text("Description", description)
    Image.new("RGB", (4, 4), (200, 10, 10)).save(path, pnginfo=info)
    return path


def _fake_run(root: Path, name: str = RUN_ID, run_id: str | None = None) -> Path:
    run_dir = write_fake_run(root / name)
    if run_id is not None:
        (run_dir / "metrics.json").write_text(json.dumps({"run_id": run_id}))
    _png(run_dir / "analysis" / "running_llc.png")
    return run_dir


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site" / "docs"
    site.mkdir(parents=True)
    (site / "README.md").write_text("# project\n\nIntro.\n")
    return site


@pytest.mark.parametrize("run_id", ["../../x", "../assets/../../y", "/tmp/abs", "hmc-0123456789abcdef/../z"])
def test_run_id_that_is_a_path_writes_nothing(tmp_path, site, run_id):
    run_dir = _fake_run(tmp_path / "runs", run_id=run_id)
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match="--run-dir"):
        PR.promote([run_dir], ["running_llc"], readme=site / "README.md")
    assert _snapshot(tmp_path) == before
    assert not (site / "assets").exists()


def test_run_id_is_checked_even_when_the_directory_matches():
    """metrics.json's run_id names the asset files, so it must be a run id, not just the folder's name."""
    with pytest.raises(ConfigError, match="not a run id"):
        PR._checked_run_id(Path("runs/x"), "..")
    with pytest.raises(ConfigError, match="not a run id"):
        PR._checked_run_id(Path("runs/x"), 7)
    assert PR._checked_run_id(Path("runs/x"), RUN_ID) == RUN_ID


def test_png_description_is_sanitised(tmp_path, site):
    png = _png(tmp_path / "figs" / "llc_vs_d.png", HOSTILE)
    readme = site / "README.md"
    PR.promote(sweeps=[png], readme=readme)
    text = readme.read_text()
    assert text.count(PR.START) == 1 and text.count(PR.END) == 1
    gallery = text[text.index(PR.START):]
    assert "<script" not in gallery and "<img" not in gallery and "&lt;script&gt;" in gallery
    headings = [line for line in gallery.splitlines() if line.startswith("#")]
    assert headings == ["## Gallery", "### Sweeps"]
    caption = next(line for line in gallery.splitlines() if line.startswith("*"))
    assert len(caption) <= PR.TEXT_LIMIT + 40 and caption.endswith("…*")
    # the README is still well-formed: the next promote replaces the section instead of failing
    before = _snapshot(site)
    report = PR.promote(sweeps=[png], readme=readme)
    assert not report.changed and _snapshot(site) == before


def test_clean_text_bounds_and_flattens():
    out = PR.clean_text("a\nb\r\n\tc\x00d\u2028e " + "#" * 3 + "<!-- x -->", limit=20)
    assert out == "a b c d e ###&lt;!-…"
    assert PR.clean_text("a\nb  <!-- gallery:end -->") == "a b &lt;!-- gallery:end --&gt;"
    assert PR.clean_text("### title") == "title"
    assert len(PR.clean_text("y" * 10_000)) == PR.TEXT_LIMIT


def test_non_utf8_readme_fails_before_any_asset_is_copied(tmp_path, site):
    run_dir = _fake_run(tmp_path / "runs")
    readme = site / "README.md"
    readme.write_bytes(b"# caf\xe9\n\xff\xfe\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match="not UTF-8"):
        PR.promote([run_dir], ["running_llc"], readme=readme)
    assert _snapshot(tmp_path) == before and not (site / "assets").exists()

    res = run_cli(["promote-readme-images", "--run-dir", str(run_dir), "--plots", "running_llc",
                   "--readme", str(readme)])
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --readme") and "not UTF-8" in lines[0]
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("content", [b"not a png at all", b"GIF89a" + b"\0" * 64, b"", b"\x89PNG\r\n"],
                         ids=["text", "gif", "empty", "cut-signature"])
def test_non_png_sweep_is_rejected(tmp_path, site, content):
    fake = tmp_path / "figs" / "sweep_fake.png"
    fake.parent.mkdir()
    fake.write_bytes(content)
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match="is not a PNG file"):
        PR.promote(sweeps=[fake], readme=site / "README.md")
    assert _snapshot(tmp_path) == before


def test_sweep_directory_and_assets_file_are_one_line_errors(tmp_path, site):
    png = _png(tmp_path / "figs" / "ok.png", "fine")
    res = run_cli(["promote-readme-images", "--sweep", str(tmp_path / "figs"), "--readme", str(site / "README.md")])
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "is a directory" in res.stderr
    (site / "assets").write_text("a file in the way")
    before = _snapshot(tmp_path)
    res = run_cli(["promote-readme-images", "--sweep", str(png), "--readme", str(site / "README.md")])
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "--assets" in res.stderr
    assert _snapshot(tmp_path) == before


def test_readme_keeps_its_mode(tmp_path, site):
    readme = site / "README.md"
    os.chmod(readme, 0o640)
    PR.promote(sweeps=[_png(tmp_path / "figs" / "a.png", "first")], readme=readme)
    assert readme.stat().st_mode & 0o777 == 0o640 and PR.START in readme.read_text()
    PR.promote(sweeps=[_png(tmp_path / "figs" / "a.png", "second")], readme=readme)
    assert readme.stat().st_mode & 0o777 == 0o640 and "second" in readme.read_text()


def test_run_captions_from_hostile_config_are_sanitised(tmp_path, site):
    """config.json's values end up in the heading and caption of a run: they are flattened too."""
    run_dir = _fake_run(tmp_path / "runs")
    config = {"seed": 0, "target": {"kind": "evil\n## pwned <b>x</b>"}, "data": {"n": "1\n" + PR.END},
              "sampler": {"name": "hmc\n# s", "chains": 2}}
    (run_dir / "config.json").write_text(json.dumps(config))
    readme = site / "README.md"
    PR.promote([run_dir], ["running_llc"], readme=readme)
    text = readme.read_text()
    assert text.count(PR.END) == 1 and "<b>" not in text
    gallery = text[text.index(PR.START):].splitlines()
    assert [line for line in gallery if line.startswith("#")][:1] == ["## Gallery"]
    assert [line.split()[0] for line in gallery if line.startswith("#")] == ["##", "###"]
