"""pyproject.toml metadata: `license` is an SPDX expression, with a setuptools that reads it."""

from __future__ import annotations

import re
import tomllib

from packaging.licenses import canonicalize_license_expression

from tests.support.paths import REPO_ROOT


def test_license_is_an_spdx_expression_and_the_build_backend_supports_it() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    license_ = project["project"]["license"]
    assert isinstance(license_, str), "the `license = { text = ... }` table is deprecated (PEP 639)"
    assert canonicalize_license_expression(license_) == license_
    (setuptools,) = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+).*", setuptools)
    assert minimum and int(minimum.group(1)) >= 77, "setuptools reads SPDX `license` strings from 77"
