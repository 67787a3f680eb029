"""Layer 3, the scorer: feature cache, feature extraction, the accelerate scorer, results files,
calibration. May import ``core`` and ``sources``, nothing above."""
