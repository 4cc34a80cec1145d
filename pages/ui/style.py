"""Style and scripts: the base and presenter CSS, and charts drawn after the first paint."""
from __future__ import annotations


import streamlit as st


from .dispatch import job_manager
from .lookups import param_counter
from .state import presenter

# ---------------------------------------------------------------------------- chrome and presenter mode

# Always: Streamlit's own running indicator and its Stop (which stops the page's script, not the
# run) would only confuse; the toolbar's developer items are off in .streamlit/config.toml.
BASE_CSS = """
<style>
[data-testid="stStatusWidget"], [data-testid="stAppDeployButton"], [data-testid="stMainMenu"] { display: none; }
</style>
"""

# A projector at the back of a room, on one 1920x1080 screen: numbers, buttons and plots several times
# their desk size, with the Run bar, the running panel and Stop, or a result's cards and the trade-off
# plot, inside the first screen (tests/test_browser.py measures them). Spacing is what gives way: the
# gaps between elements, the title, the metric cards (a compact row, still ~58 px numbers). The
# sidebar is the speaker's, not the room's: wider (no select box cuts its text), in desk-size type.
PRESENTER_SIDEBAR_PX = 440
PRESENTER_CSS = """
<style>
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] { display: none; }
html, body, [data-testid="stAppViewContainer"] { font-size: 1.3rem; }
[data-testid="stMainBlockContainer"] { padding-top: 1rem; padding-bottom: 2rem; }
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] { gap: 0.5rem; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 1.35rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.1rem; }
[data-testid="stMetricValue"], [data-testid="stMain"] [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p {
  font-size: 2.8rem; line-height: 1.1; }
[data-testid="stMain"] [data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"] p { font-size: 1.1rem; }
[data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div { white-space: normal; }
[data-testid="stMetricDelta"], [data-testid="stMain"] [data-testid="stMetricDelta"] [data-testid="stMarkdownContainer"] p {
  font-size: 1.0rem; white-space: normal; }
[data-testid="stMain"] h1 { font-size: 2.2rem !important; padding: 0 0 0.2rem 0; }
[data-testid="stMain"] h2, [data-testid="stMain"] h3 { font-size: 1.7rem !important; padding: 0.4rem 0 0.2rem 0; }
[data-testid="stMain"] [data-testid="stHeading"] [data-testid="stMarkdownContainer"] { margin-bottom: 0; }
[data-testid="stMain"] .stButton button, [data-testid="stMain"] .stButton button p {
  font-size: 1.9rem; min-height: 4rem; padding: 0.4rem 1rem; }
[data-testid="stMain"] [data-testid="stProgress"] p { font-size: 1.4rem; }
section[data-testid="stSidebar"] { width: %(w)dpx !important; min-width: %(w)dpx !important; }
section[data-testid="stSidebar"] [data-testid="stSidebarContent"] { font-size: 1rem; }
[data-testid="stSidebar"] label p { font-size: 1.05rem; }
[data-testid="stSidebar"] [data-testid="stMarkdownContainer"] p,
[data-testid="stSidebar"] [data-testid="stCaptionContainer"] p { font-size: 0.9rem; }
[data-testid="stSidebar"] [data-testid="stSelectbox"] input { font-size: 0.95rem; }
[data-testid="stSidebar"] h2 { font-size: 1.4rem !important; padding: 0.2rem 0; }
[data-testid="stSidebarHeader"] { height: 2.5rem; margin-bottom: 0; }
[data-testid="stSidebar"] [data-testid="stVerticalBlock"] { gap: 0.6rem; }
[data-testid="stSidebar"] [role="radiogroup"] label { margin-bottom: 0.1rem; }
[data-testid="stSliderThumbValue"], [data-testid="stSliderTickBarMin"], [data-testid="stSliderTickBarMax"] {
  font-size: 0.95rem; }
</style>
""" % {"w": PRESENTER_SIDEBAR_PX}
# Heights (px) of the Lab's plots in presenter mode, so that a run and its result fit one screen.
PRESENTER_LIVE_PLOT_PX = 400
PRESENTER_TRADEOFF_PX = 470         # under a result's cards
PRESENTER_TRADEOFF_ALONE_PX = 720   # before any result: the plot is the screen


def apply_style() -> None:
    st.html(BASE_CSS)
    if presenter():
        st.html(PRESENTER_CSS)


# ---------------------------------------------------------------------------- charts after the first paint
# Measured (docs/PERFORMANCE.md, first page): the browser holds the page back until plotly's script
# has loaded and parsed, about a second here. So a session's first run draws the page without its
# charts; a fragment whose timer runs in the browser then asks for the rerun that draws them. The
# timer starts when the fragment is mounted, not when the page is painted: at 0.1 s its rerun came
# before the Run button was on screen and held it back to the plot's time; 0.3 s lets it paint first.
def painted(placeholder: str | None = None) -> bool:
    """Whether the page is on screen, so heavy elements may be drawn (True from the rerun that the
    page's last line asks for); before that, shows `placeholder` and makes sure that rerun comes."""
    if st.session_state.get("charts_ready"):
        return True
    st.session_state["charts_waiting"] = True
    if placeholder:
        st.caption(placeholder)
    return False


def chart(make, key: str, placeholder: str = "Drawing the plot…", presenter_height: int | None = None) -> None:
    """`make(plots)` builds the figure from core.plots (imported here, off the first run's path:
    plotly costs a few hundred ms to import); presenter mode enlarges it (to `presenter_height` px)."""
    if not painted(placeholder):
        return
    from core import plots

    fig = make(plots)
    st.plotly_chart(plots.for_presenter(fig, presenter_height) if presenter() else fig, key=key)


def draw_waiting_charts() -> None:
    """The last line of a page that draws charts or other elements held back by `painted()`."""
    if not st.session_state.pop("charts_waiting", False):
        st.session_state["charts_ready"] = True
        return
    st.session_state["charts_armed"] = False

    @st.fragment(run_every=0.3)
    def after_first_paint():
        if st.session_state.get("charts_armed"):     # a run from the browser's timer: the page is shown
            st.session_state["charts_ready"] = True
            job_manager().postpone_warmup()          # plotly's script loads in the browser now: torch after it
            param_counter().start_now()              # the counts (a child at nice 19) need not wait longer
            st.rerun()
        st.session_state["charts_armed"] = True      # the fragment's first run, inline in the script

    after_first_paint()
