import hmac
import ipaddress

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from dropp.core.dependencies import SettingsDep
from dropp.core.errors import DroppError, responses

router = APIRouter(tags=["operations"])

# Headers a reverse proxy adds: a request through one is not from this machine, even when the
# proxy itself connects from loopback.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class MetricsForbidden(DroppError):
    status, code = 403, "metrics_forbidden"


def _from_this_machine(request: Request) -> bool:
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **responses(MetricsForbidden),
    },
)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    """The process's metrics in Prometheus format: to clients on this machine (not through a
    proxy), and to others with `Authorization: Bearer <METRICS_TOKEN>`."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    given = request.headers.get("authorization", "")
    allowed = token is not None and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    if not (allowed or _from_this_machine(request)):
        raise MetricsForbidden(
            "Metrics are answered to this machine, and to others with METRICS_TOKEN as a "
            "bearer token."
        )
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
