"""Streamlit helpers shared by the pages: dataset picking, cached loading, plots, progress."""
