"""Every Redis schema Trident reads or writes: keys, the registry and its Lua, the rate budget, the journal, the report stream, fleet status and health."""
