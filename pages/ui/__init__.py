"""Streamlit glue shared by app.py and the pages, one module per concern; the pages call it as `ui.<name>`.

    navigation.py  the lab's pages (st.navigation) and a page reached without app.py
    dispatch.py    the job manager and the Ray dispatcher, this browser's id, jobs and sweeps, estimates
    state.py       every session-state key (SESSION_KEYS), the Lab's one configuration, widgets, the URL
    lookups.py     cached look-ups: task facts, parameter counts, presets
    messages.py    a run's outcome, a bad value, durations in words
    style.py       the base and presenter CSS, charts drawn after the first paint

Core does the work; this package only connects it to st. A package, not modules beside the pages:
Streamlit's legacy discovery offers every pages/*.py file as a page (see navigation.enter_page). The
modules import each other in one direction: messages and lookups import none of the others, dispatch
imports those two, state imports dispatch, and style imports state and dispatch.
"""
from __future__ import annotations

# One module per concern; the pages call them all as `ui.<name>`.
from .dispatch import *  # noqa: F401,F403
from .lookups import *  # noqa: F401,F403
from .messages import *  # noqa: F401,F403
from .navigation import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .style import *  # noqa: F401,F403
