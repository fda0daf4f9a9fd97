"""VideoPhy-2 AutoEval / VideoCon-Physics judge (mPLUG-Owl-Video), exact to the official code."""
