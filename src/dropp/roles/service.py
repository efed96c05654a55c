"""Whether a role's upload policy admits a file: pure functions of the request, no I/O, so
upload-init pays nothing but a few string comparisons for them."""

import unicodedata
from collections.abc import Iterable

from dropp.roles.errors import FileTypeNotAllowed, UploadNotAllowed
from dropp.roles.policy import UploadPolicy

ANY_TYPE = "*/*"


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text.lower())


def extension_allowed(filename: str, extensions: Iterable[str]) -> bool:
    """True if the name ends with `.<extension>` for one of `extensions`, ignoring case.

    Multi-part extensions work ("tar.gz"); a name that is nothing but the extension (".docx")
    has none, as for `os.path.splitext`.
    """
    name = _fold(filename)
    for extension in extensions:
        suffix = "." + _fold(extension)
        if name.endswith(suffix) and len(name) > len(suffix):
            return True
    return False


def media_type(content_type: str) -> str:
    """`text/plain; charset=utf-8` -> `text/plain`."""
    return content_type.split(";", 1)[0].strip().lower()


def content_type_allowed(content_type: str, allowed: Iterable[str]) -> bool:
    """True if the media type is listed exactly, or its family is (`image/*`)."""
    media = media_type(content_type)
    family = media.split("/", 1)[0] + "/*"
    return any(entry in (media, family, ANY_TYPE) for entry in allowed)


def check_upload(policy: UploadPolicy, *, filename: str, content_type: str) -> None:
    """Refuse what the policy does not admit; with both lists set, both must admit the file.

    `content_type` must be the type the upload will be signed with, so a client cannot pass
    the check with one name and type and store another.
    """
    if not policy.can_upload:
        raise UploadNotAllowed("Your account's role may not upload files.")
    extension_ok = not policy.extensions or extension_allowed(filename, policy.extensions)
    type_ok = not policy.content_types or content_type_allowed(content_type, policy.content_types)
    if extension_ok and type_ok:
        return
    allowed = []
    if policy.extensions:
        allowed.append("files ending in " + ", ".join(f".{e}" for e in policy.extensions))
    if policy.content_types:
        allowed.append("of type " + ", ".join(policy.content_types))
    raise FileTypeNotAllowed(
        f"Your account's role may upload only {' and '.join(allowed)}; "
        f"{filename!r} ({media_type(content_type)}) is not one of them.",
        allowed_extensions=list(policy.extensions),
        allowed_content_types=list(policy.content_types),
    )


def size_limit(policy: UploadPolicy, ceiling: int) -> int:
    """The largest file the role may upload: its own limit, within the server's."""
    if policy.max_file_bytes is None:
        return ceiling
    return min(policy.max_file_bytes, ceiling)
