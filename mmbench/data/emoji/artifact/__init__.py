"""Data files of the packaged emoji dataset (a package only so that the wheel ships them)."""
