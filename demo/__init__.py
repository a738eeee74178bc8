"""Demo cases in the challenge format, built from real images shipped in registry packages."""
