"""mPLUG-Owl-Video model code with the official state-dict names."""
