-- sweep: drop every expired lease with its claims and capital; returns the dropped lease ids.
-- ARGV: none. Acquire does the same first thing; sweep frees claims while no acquire comes.
return drop_expired(now_ms())
