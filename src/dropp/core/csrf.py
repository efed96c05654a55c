"""The one rule for a browser's state-changing request to Dropp's pages: it must come from a
page of this server's own origin.

Browsers say where a request comes from in `Sec-Fetch-Site` (every current browser, on every
request; scripts cannot set it). It alone decides when present: `same-origin` passes;
`same-site` (another port or subdomain), `cross-site` and `none` (typed in, or a bookmark,
which a form post never is) are refused. A browser that does not send it still sends
`Origin` on a form post, which must then be this server's public origin; `Origin: null`
(what pages served with `Referrer-Policy: no-referrer`, sandboxed frames and some redirects
give) names no origin and is refused. A request with neither header is not a browser's
cross-site form (browsers send `Origin` on every cross-origin POST): scripts and API
clients pass, and the forms' own CSRF tokens and SameSite=Lax cookies still apply.
"""

from urllib.parse import urlsplit

from starlette.requests import Request

from dropp.core.config import Settings


def public_origin(settings: Settings) -> str:
    """`scheme://host[:port]` of PUBLIC_URL, as browsers write it in `Origin`."""
    public = urlsplit(settings.public_url)
    return f"{public.scheme}://{public.netloc}".lower()


def from_this_site(request: Request, settings: Settings) -> bool:
    """True when a browser sent this request from one of this server's own pages."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() == "same-origin"
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin.strip().lower() == public_origin(settings)
