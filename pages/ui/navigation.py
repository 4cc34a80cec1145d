"""The lab's pages: st.navigation, and a page reached without app.py (a deep link on a fresh server)."""
from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st


# ---------------------------------------------------------------------------- navigation
# Streamlit (1.67) has two ways to find an app's pages. The old one, for an app with a `pages/` folder
# beside its main script, lists every pages/*.py file and runs the one the URL names *instead of* the main
# script; the new one, st.navigation, is what app.py uses. Which one applies is one flag for the whole
# server process: it starts on "old" when pages/ exists and turns to "new" the first time any session
# calls st.navigation. So on a freshly started server, a link to /compare or /learn opened before anyone
# opened / ran the page without app.py (no session set-up: "no attribute lab_cfg") and the sidebar listed
# the raw files. The page files stay in pages/, so every page starts with enter_page(): in a run that did
# not come through app.py it runs app.py there and then, which switches the server to st.navigation for
# good and draws this same page in full, and the outer run stops. (Not a rerun: a rerun would drop the
# click that started this run. AppTest starts every run the old way, so its page switches take this path.)
APP_SCRIPT = Path(__file__).resolve().parents[2] / "app.py"
NAV_MARK = "_via_app"        # set by app.py just before it runs the page; the page takes it


def navigation():
    """The lab's pages, as st.navigation's page (app.py runs it)."""
    return st.navigation([
        st.Page("pages/lab.py", title="Lab", icon=":material/science:", default=True),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
    ])


# The browser keeps the main area's scroll offset when the page changes (a Learn button, a sidebar link):
# the new page lands scrolled down as far as its own height allows, and scroll anchoring then follows its
# content further down as its plots arrive. Three of the eleven Learn buttons landed on a Lab with the
# Run bar out of view. A page that replaces another starts at the top (the element takes no room: a
# script's empty element would still push the page down by one gap until the next rerun).
TO_TOP = """<style>[data-testid="stElementContainer"]:has(script.to-top) { display: none; }</style>
<script class="to-top">document.querySelector('[data-testid="stMain"]')?.scrollTo(0, 0);</script>"""


def run_page(page) -> None:
    """app.py's last line: run the page the URL names, marked as having come through app.py."""
    st.session_state[NAV_MARK] = True
    shown = st.session_state.get("page_shown")
    if shown is not None and shown != page.url_path:
        st.html(TO_TOP, unsafe_allow_javascript=True)
    st.session_state["page_shown"] = page.url_path
    page.run()


def enter_page() -> None:
    """The first line of every page: a run that Streamlit started without app.py (its legacy discovery
    of pages/, on a fresh server) goes through app.py, to the same page (a page's id is its URL path
    either way), with the same link and the same clicks."""
    if st.session_state.pop(NAV_MARK, False):
        return
    runpy.run_path(str(APP_SCRIPT))     # the session's set-up, st.navigation, and this page in full
    st.stop()                           # drawn by app.py just now: nothing left for this run to do
