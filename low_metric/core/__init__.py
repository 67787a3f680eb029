"""Layer 1, pure math: A score, correspondence and PCK, the 840 frame, the law, the AC policy.

numpy / torch only, no I/O; imports nothing of low_metric outside ``core``.
"""
