"""The Streamlit layer of Vitals: the only code besides ``pages/`` that imports streamlit,
plotly or streamlit-authenticator. ``pages -> ui -> engine``; never the other way."""
