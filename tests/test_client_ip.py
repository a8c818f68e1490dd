"""paytrust.client_ip: X-Forwarded-For counts only through our own proxies, read from the right."""

import pytest
from django.test import RequestFactory

from paytrust.client_ip import client_ip


def request(remote, forwarded=None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], "203.0.113.5", "198.51.100.1", "203.0.113.5"),  # no proxies configured: the header is ignored
        (["10.0.0.0/8"], "203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not from a proxy: ignored
        (["10.0.0.0/8"], "10.0.0.2", "198.51.100.1", "198.51.100.1"),
        (
            ["10.0.0.0/8"],
            "10.0.0.2",
            "1.2.3.4, 198.51.100.1",
            "198.51.100.1",
        ),  # left entries: the client's own
        (["10.0.0.0/8", "127.0.0.1/32"], "127.0.0.1", "198.51.100.1, 10.9.9.9", "198.51.100.1"),  # two hops
        (["10.0.0.0/8"], "10.0.0.2", "", "10.0.0.2"),
        (["10.0.0.0/8"], "10.0.0.2", "not-an-address", "10.0.0.2"),
        (["::1/128"], "::1", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_client_ip(settings, trusted, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = trusted
    assert client_ip(request(remote, forwarded)) == expected


def test_a_malformed_trusted_proxies_setting_stops_the_start_up():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "TRUSTED_PROXIES": "10.0.0.0/8,not-a-network", "PAYTRUST_ALLOW_DEV_SECRET": "true"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'paytrust.settings'); django.setup()",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "ImproperlyConfigured: TRUSTED_PROXIES" in done.stderr
