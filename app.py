"""Fine-tuning lab: `streamlit run app.py`. Pages live in pages/; the work is done in core/."""
import streamlit as st

from pages import ui

st.set_page_config(page_title="Fine-tuning lab", page_icon=":material/science:", layout="wide")
ui.init_session()          # the link's configuration, on this session's first run
ui.job_manager()           # start the shared worker now, so it is warm before the first Run
ui.session_owner()         # this browser's id (a cookie): its runs outlive a reload or a closed tab

with st.sidebar:    # bound like the Lab's widgets: a toggle set only from session state resets on a rerun
    st.session_state["presenter"] = ui.presenter()
    st.toggle("Presenter mode", key="presenter", on_change=ui.take_presenter,
              help="Hide the advanced controls and enlarge everything for a talk on a projector.")
ui.apply_style()

try:
    ui.run_page(ui.navigation())    # Lab, Compare, Learn (pages/ui is a package: never offered as a page)
finally:                       # also after a page's st.stop(): a browser's first page may be any of them
    ui.remember_browser()      # last: the script that keeps the id in a cookie moves nothing on the page
