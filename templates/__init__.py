"""The packaged report templates (Jinja2 and CSS), found via importlib.resources."""
