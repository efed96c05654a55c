"""Vendor Swagger UI (the /docs page) from the npm registry into the package.

    python scripts/vendor_swagger_ui.py 5.35.0

Runs `npm pack swagger-ui-dist@<version>` (npm checks the tarball against the registry's
integrity), keeps only the files /docs serves and the licences, and writes VENDORED.md with
the name, version, licence and the tarball's integrity. Then point SWAGGER_UI in
src/dropp/web/docs.py at the new directory and delete the old one.
"""

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "swagger-ui-dist"
KEEP = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "oauth2-redirect.html",
    "oauth2-redirect.js",
    "favicon-32x32.png",
    "LICENSE",
    "NOTICE",
    "swagger-ui-bundle.js.LICENSE.txt",
)
VENDOR = Path(__file__).resolve().parent.parent / "src" / "dropp" / "static" / "vendor"


def main(version: str) -> None:
    target = VENDOR / f"{PACKAGE}-{version}"
    with tempfile.TemporaryDirectory() as work:
        packed = subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{version}", "--json", "--pack-destination", work],
            check=True,
            capture_output=True,
            text=True,
        )
        (info,) = json.loads(packed.stdout)
        tarball = Path(work) / info["filename"]
        sha256 = hashlib.sha256(tarball.read_bytes()).hexdigest()
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        with tarfile.open(tarball) as archive:
            for name in KEEP:
                member = archive.extractfile(f"package/{name}")
                if member is None:
                    raise SystemExit(f"{name} is not in {info['filename']}")
                (target / name).write_bytes(member.read())
    licence = subprocess.run(
        ["npm", "view", f"{PACKAGE}@{version}", "license"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (target / "VENDORED.md").write_text(
        f"# {PACKAGE} {version}\n\n"
        "Swagger UI for the /docs page, served from the package (no CDN).\n\n"
        f"- package: `{PACKAGE}@{version}` from the npm registry (`npm pack`)\n"
        f"- licence: {licence} (`LICENSE`, `NOTICE`; the bundle's third-party notices in\n"
        "  `swagger-ui-bundle.js.LICENSE.txt`)\n"
        f"- tarball: `{info['filename']}`\n"
        f"- integrity: `{info['integrity']}`\n"
        f"- sha1: `{info['shasum']}`\n"
        f"- sha256: `{sha256}`\n"
        f"- kept: {', '.join(f'`{name}`' for name in KEEP)}\n\n"
        "Refresh with `python scripts/vendor_swagger_ui.py <version>`.\n"
    )
    print(f"vendored {PACKAGE} {version} into {target}")  # noqa: T201


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
