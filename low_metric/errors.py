"""The one exception type of low_metric: bad input, stated in one line."""


class LowMetricError(ValueError):
    """Bad input or state, with a one-line message that names the problem."""
