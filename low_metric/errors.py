"""The one exception type of low_metric: bad input, stated in one line."""


class LowMetricError(ValueError):
    """Bad input or state, with a one-line message that names the problem."""


def network_failure(exc: BaseException) -> str | None:
    """"unreachable" or "timeout" when ``exc`` is the HTTP client's failure to reach a server
    (httpx or httpx2, by huggingface_hub version; requests' ConnectionError), else None."""
    kinds = {c.__name__ for c in type(exc).__mro__}
    if "TimeoutException" in kinds:
        return "timeout"
    if kinds & {"TransportError", "ConnectionError"}:
        return "unreachable"
    return None
