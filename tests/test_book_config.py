"""The book's configuration: buttons appear only with a real repository address."""
import importlib.util
import pathlib
import types

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _ext():
    spec = importlib.util.spec_from_file_location("nnbook_buttons",
                                                  ROOT / "book" / "_ext" / "nnbook_buttons.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_buttons_follow_the_one_repository_setting():
    ext = _ext()
    for url, shown in (("", False), ("  ", False), ("https://example.org/me/nnbook", True)):
        opts = {"repository_url": url, "launch_buttons": {"binderhub_url": "https://mybinder.org"}}
        ext._buttons(None, types.SimpleNamespace(html_theme_options=opts))
        assert opts["use_repository_button"] is shown and opts["use_issues_button"] is shown
        assert bool(opts["launch_buttons"]) is shown


def test_config_has_no_placeholder_address_and_builds_nitpicky():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["repository"]["url"] == "" or "nnbook/nnbook" not in cfg["repository"]["url"]
    assert "use_repository_button" not in cfg.get("html", {})     # the extension decides
    assert cfg["sphinx"]["config"]["nb_render_markdown_format"] == "myst"
    assert "jupyter-book build . -W -n" in (ROOT / "Makefile").read_text()
