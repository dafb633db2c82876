"""Show the repository, issue, edit and launch (Binder, Colab) buttons only when the
book has a public address: one setting, ``repository: url:`` in ``_config.yml``.

Jupyter Book turns ``_config.yml`` into Sphinx's ``html_theme_options``.  This
extension switches the repository and issue buttons on when the URL is set, and drops
the launch buttons while it is empty, so the published book never points to a
placeholder address.
"""
from __future__ import annotations


def _buttons(app, config):
    opts = config.html_theme_options
    has_url = bool((opts.get("repository_url") or "").strip())
    opts["use_repository_button"] = has_url
    opts["use_issues_button"] = has_url
    if not has_url:
        opts["launch_buttons"] = {}


def setup(app):
    app.connect("config-inited", _buttons)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
