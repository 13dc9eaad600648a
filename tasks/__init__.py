"""Task cards shipped with mmbench (one TOML file per task); read with importlib.resources."""
