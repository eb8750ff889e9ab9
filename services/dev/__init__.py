"""`soulcaster dev`: the whole pipeline in one process on the embedded defaults, fed a bundled sample."""
