"""One typed contract per file a run writes, the figure catalogue, and publishing outputs."""
