"""The one exception type of low_metric: bad input, stated in one line."""


class LowMetricError(ValueError):
    """Bad input or state, with a one-line message that names the problem."""



class Refused(LowMetricError):
    """A request declined by a limit or a policy (size, time, remote code, a public service's rules)."""


def first_line(text: object, default: str = "") -> str:
    """The first non-blank line of ``str(text)``, stripped (``default`` when there is none)."""
    return next((line.strip() for line in str(text).splitlines() if line.strip()), default)


def one_line(exc: BaseException, secret: str | None = None, limit: int = 300) -> str:
    """``exc`` as one line for a person (its class named unless it is a LowMetricError); ``secret``
    (a token) never appears in it."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    if not isinstance(exc, LowMetricError):
        text = f"{type(exc).__name__}: {text}"
    return (text.replace(secret, "***") if secret else text)[:limit]


class RuntimeFailure(LowMetricError):
    """The world failed, not the input: the Hub unreachable or timing out (the CLI exits 1, not 2)."""
