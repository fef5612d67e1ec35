"""The Streamlit dashboard over the store: ``streamlit run dashboard/app.py -- --store URL``."""
