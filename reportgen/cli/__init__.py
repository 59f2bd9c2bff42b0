"""The command line: parsing, dispatch and the progress display, the only place that prints."""
