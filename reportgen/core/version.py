"""reportgen's version: written here once; the package, its metadata and every page read it."""

VERSION = "0.1.0"
