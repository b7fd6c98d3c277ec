"""The unit layer's fixtures: fakeredis (tests/support/fake.py) instead of a redis-server."""

from tests.support.fake import fake_redis, fake_server

__all__ = ["fake_redis", "fake_server"]
