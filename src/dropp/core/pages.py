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
    # Pages carry one-time codes and CSRF tokens: never cached, never leaked in a Referer,
    # never framed (a framed confirmation button is a clickjacking target).
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {form_targets}; "
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
