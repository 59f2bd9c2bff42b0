"""TOML -> validated frozen configuration objects; --set overrides; the sweep specification."""
