import redis

from tools.embedded_redis import EmbeddedRedis, find_redis_server


def test_redis_fixture_is_real_and_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    assert client.eval("return redis.call('INCR', KEYS[1])", 1, "k") == 1
    client.close()


def test_embedded_redis_stops_and_cleans_up() -> None:
    server = EmbeddedRedis(binary=find_redis_server()).start()
    directory = server.directory
    assert redis.Redis.from_url(server.url).ping()
    server.stop()
    assert not directory.exists()
