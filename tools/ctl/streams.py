"""Reading Trident's streams for ctl: newest first, in pages, as text maps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from shared.codec import as_text

__all__ = ["newest_first", "entries_since"]

_PAGE = 1000


async def newest_first(client: aioredis.Redis, stream: str, *, limit: int = 200_000,
                       oldest: str = "-") -> AsyncIterator[tuple[str, dict[str, str]]]:
    """(entry id, fields) from the newest entry back to `oldest`, at most `limit`, a page per round trip."""
    top = "+"
    seen = 0
    while seen < limit:
        page = await client.xrevrange(stream, top, oldest, count=min(_PAGE, limit - seen))
        for entry_id, fields in page:
            yield as_text(entry_id), {as_text(k): as_text(v) for k, v in fields.items()}
        seen += len(page)
        if len(page) < _PAGE:
            return
        top = "(" + as_text(page[-1][0])  # exclusive: continue below the last one read


async def entries_since(client: aioredis.Redis, stream: str, since_ms: int) -> AsyncIterator[dict[str, str]]:
    """Every entry added at or after `since_ms` (stream ids start with the ms they were added), oldest first."""
    low = f"{since_ms}-0"
    while True:
        page = await client.xrange(stream, low, "+", count=_PAGE)
        for _, fields in page:
            yield {as_text(k): as_text(v) for k, v in fields.items()}
        if len(page) < _PAGE:
            return
        low = "(" + as_text(page[-1][0])
