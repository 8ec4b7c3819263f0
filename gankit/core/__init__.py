"""gankit's core: registries, the pluggy plugin host, hook specifications, the built-in
plugin, user-facing errors and shared file helpers. Everything else builds on it; it
imports nothing above it."""
