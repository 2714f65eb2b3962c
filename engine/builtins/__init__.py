"""Built-in plugins. Each module is a plugin registered through the core's entry
points and uses only the public ``engine`` API, exactly as a third party would."""
