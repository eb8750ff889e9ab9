"""Code every Soulcaster service shares: settings, key names, models, Redis access, the consumer runtime."""
