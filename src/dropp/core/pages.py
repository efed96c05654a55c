"""Dropp's few HTML pages (sign-in, confirmations, email links): Jinja2 with autoescaping,
served with headers that keep them out of frames, caches and Referer headers."""

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    enable_async=False,
)

PAGE_HEADERS = {
    # Pages carry one-time codes and CSRF tokens: never cached, never framed (a framed
    # confirmation button is a clickjacking target).
    "Cache-Control": "no-store",
    # A Referer only to this server, never to another site. Not `no-referrer`: under it
    # browsers send `Origin: null` on form posts, and a form whose origin cannot be told
    # from a forged one is refused (core/csrf.py). Pages whose URL holds a secret send none
    # at all (SECRET_LINK_HEADERS), so the secret is not copied into a Referer that a proxy
    # in front of Dropp would log; their forms pass the check on `Sec-Fetch-Site`.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self' {form_targets}; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def render(
    template: str,
    status_code: int = 200,
    *,
    form_targets: str = "",
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page `template` (a file in dropp/templates) with `context`, autoescaped.

    `form_targets`: extra origins a form on the page may submit to, for the CSP.
    """
    html = _environment.get_template(template).render(**context)
    page_headers = {
        **PAGE_HEADERS,
        "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"].format(
            form_targets=form_targets
        ),
        **(headers or {}),
    }
    return HTMLResponse(html, status_code=status_code, headers=page_headers)


# What every answer about a secret link carries (share links, file requests, email links),
# errors included: the token is in the URL, so no Referer may carry it anywhere (not even
# to this server: a proxy's access log keeps Referers), no crawler may index it, and no
# cache may keep what it opened.
SECRET_LINK_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


def _quality(accept: str, media_type: str) -> float:
    """The q Accept gives `media_type`, from its most specific matching range."""
    family = media_type.partition("/")[0]
    specificity, quality = -1, 0.0
    for entry in accept.lower().split(","):
        candidate, *parameters = (field.strip() for field in entry.split(";"))
        rank = {media_type: 2, f"{family}/*": 1, "*/*": 0}.get(candidate, -1)
        if rank <= specificity:
            continue
        q = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0
        specificity, quality = rank, q
    return quality


def prefers_html(accept: str | None) -> bool:
    """A browser: its Accept ranks text/html above JSON. API clients and `*/*` get JSON."""
    if not accept:
        return False
    return _quality(accept, "text/html") > _quality(accept, "application/json")


SIZE_UNITS = ("KB", "MB", "GB", "TB")


def size_text(size: int) -> str:
    """A size for people to read: `1 byte`, `512 bytes`, `1.5 MB` (units of 1,000)."""
    if size < 1000:
        return f"{size} byte{'' if size == 1 else 's'}"
    value = float(size)
    for unit in SIZE_UNITS:
        value /= 1000
        if value < 1000 or unit == SIZE_UNITS[-1]:
            break
    return f"{value:.1f} {unit}"
