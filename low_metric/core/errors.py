"""The one exception type of low_metric: bad input, stated in one line."""


class LowMetricError(ValueError):
    """Bad input or state, with a one-line message that names the problem."""



class Refused(LowMetricError):
    """A request declined by a limit or a policy (size, time, remote code, a public service's rules)."""
