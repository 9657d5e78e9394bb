"""Sphinx helpers of this project's documentation (loaded from ``docs/conf.py``).

- :class:`ExampleOrder`: the gallery's order of examples (sphinx-gallery's
  ``within_subsection_order``), the lme4 paper's analyses first;
- :data:`example_time_budget`: a per-example time budget for the gallery, called by
  sphinx-gallery before and after each example (``reset_modules``): past ``soft``
  seconds it logs a warning (an error under ``sphinx -W``), past ``hard`` seconds the
  example is stopped with a ``TimeoutError`` (and the build aborts);
- the ``optional-toctree`` directive: a toctree of the documents matching glob patterns
  that tolerates their absence (``docs/after_the_fit.rst`` lists the pages other
  branches will add; until they exist it shows a short note instead of a warning);
- no primary sidebar on pages whose top-level section has no sub-pages (the theme
  would show an empty "Section Navigation").
"""

import fnmatch
from pathlib import Path
import signal
import threading
import time

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.directives.other import TocTree
from sphinx.util import logging

logger = logging.getLogger(__name__)

GALLERY_ORDER = [
    "cbpp_analysis.py",
    "laplace_diagnostics.py",
    "random_effects_and_profiles.py",
    "contraception_models.py",
    "seed_question_nagq.py",
    "grouseticks_counts.py",
    "tweedie_example.py",
    "user_family.py",
    "large_panel_timing.py",
]


class ExampleOrder:
    """Sort key: the examples of :data:`GALLERY_ORDER` in that order, others after them
    by file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in GALLERY_ORDER:
            return (GALLERY_ORDER.index(filename), filename)
        return (len(GALLERY_ORDER), filename)

    def __repr__(self):
        return f"<{type(self).__name__}>"


class ExampleTimeBudget:
    """Wall-clock budget per gallery example (see the module docstring)."""

    def __init__(self, soft=60.0, hard=180.0):
        self.soft = soft
        self.hard = hard
        self._start = None

    def __repr__(self):
        return f"ExampleTimeBudget(soft={self.soft}, hard={self.hard})"

    def _can_alarm(self):
        return hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()

    def _alarm(self, signum, frame):
        raise TimeoutError(f"gallery example exceeded its hard time limit of {self.hard:.0f} s")

    def __call__(self, gallery_conf, fname, when):
        if fname is None:            # entering a gallery directory
            return
        if when == "before":
            self._start = time.perf_counter()
            if self._can_alarm():
                signal.signal(signal.SIGALRM, self._alarm)
                signal.alarm(int(self.hard))
            return
        if self._can_alarm():
            signal.alarm(0)
        if self._start is not None:
            elapsed = time.perf_counter() - self._start
            self._start = None
            if elapsed > self.soft:
                logger.warning("gallery example %s took %.1f s, over its budget of %.0f s",
                               fname, elapsed, self.soft)


example_time_budget = ExampleTimeBudget()


class OptionalTocTree(TocTree):
    """``.. optional-toctree::`` with glob patterns as entries: a toctree of the
    existing documents that match them (documents already listed by an earlier
    optional toctree of the same page are left out), or, when none exists, the
    directive's ``:placeholder:`` text as a paragraph."""

    option_spec = dict(TocTree.option_spec, placeholder=str)

    def run(self):
        env = self.state.document.settings.env
        seen = env.temp_data.setdefault("optional_toctree_seen", set())
        found = sorted(env.found_docs)
        names = []
        for pattern in (line.strip() for line in self.content):
            if not pattern:
                continue
            for doc in fnmatch.filter(found, pattern):
                if doc not in seen and doc != env.docname:
                    seen.add(doc)
                    names.append(doc)
        placeholder = self.options.pop("placeholder", None)
        if not names:
            if not placeholder:
                return []
            para = nodes.paragraph()
            para += nodes.emphasis(text=placeholder)
            return [para]
        self.content = StringList(names, source=self.content.source(0))
        return super().run()


def _reread_optional_toctrees(app, env, added, changed, removed):
    """When documents were added or removed, read the pages with an optional toctree
    again, so that an incremental build picks up a page that now exists."""
    if not (added or removed):
        return []
    pages = []
    for doc in env.found_docs:
        try:
            text = Path(env.doc2path(doc)).read_text(encoding="utf-8")
        except OSError:
            continue
        if ".. optional-toctree::" in text:
            pages.append(doc)
    return sorted(pages)


def _drop_empty_section_navigation(app, pagename, templatename, context, doctree):
    """The theme's primary sidebar lists the pages of the current top-level section;
    for a section without sub-pages (most of the user guide) it would show only its
    heading: leave the sidebar out there. It comes back once the section has pages."""
    env = app.env
    root = app.config.root_doc
    if pagename == root:
        return
    parents = {child: parent for parent, children in env.toctree_includes.items()
               for child in children}
    top = pagename
    while parents.get(top) not in (None, root):
        top = parents[top]
    if not env.toctree_includes.get(top):
        context["sidebars"] = []


def setup(app):
    app.add_directive("optional-toctree", OptionalTocTree)
    app.connect("env-get-outdated", _reread_optional_toctrees)
    app.connect("html-page-context", _drop_empty_section_navigation)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
