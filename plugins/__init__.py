"""First-party model plugins. Each module is registered through the ``mmbench`` entry-point group."""
