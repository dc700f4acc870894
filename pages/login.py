"""Sign in. The only page until someone is signed in."""

import streamlit as st

from ui import auth, router

router.ensure()

st.title("🩺 Vitals")
st.caption(
    "Customer health scorecards on the DEAR framework: Deployment, Engagement, Adoption, ROI."
)

try:
    auth.config()
except auth.AuthConfigError as exc:
    st.error(str(exc))
    st.stop()

left, _ = st.columns([2, 3])
with left:
    if auth.login_form() is not None:
        st.rerun()
    if auth.is_demo():
        st.info(
            f"**Demo mode.** Sign in as `leader` (viewer), `ops` (editor) or `admin` with the "
            f"password `{auth.DEMO_PASSWORD}`.",
            icon=":material/key:",
        )
